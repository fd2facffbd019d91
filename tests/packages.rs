//! The .deb and the .rpm as a user installs them: built from `Cargo.toml`'s metadata with
//! cargo-deb and cargo-generate-rpm, checked by the distributions' own linters, the .deb
//! installed for real with `dpkg -i` (as root), its binary run as the user it creates, then
//! purged; the .rpm's files and scripts read with `rpm -qp` (an rpm install on Debian would not
//! be a real test). `cargo package` ships what builds and nothing more.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use common::*;
use serde_json::json;
use udts_exporter::simulator::{Behaviour, SimTask};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn run(command: &mut Command) -> String {
    let output = command.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{command:?} failed:\n{text}");
    text
}

/// The release build the packages take their binary from, shared with the Dockerfile check's
/// target directory so the dependencies are compiled once.
fn target_dir() -> PathBuf {
    repo("target/dockerfile-check")
}

/// Builds both packages once per test run; `None` (skipped) without cargo-deb and
/// cargo-generate-rpm.
fn packages() -> Option<&'static (PathBuf, PathBuf)> {
    static BUILT: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    if !tool_available("cargo-deb") || !tool_available("cargo-generate-rpm") {
        return None;
    }
    Some(BUILT.get_or_init(|| {
        let target = target_dir();
        run(Command::new("cargo")
            .args(["build", "--release", "--locked", "--bin", "udts-exporter"])
            .current_dir(repo(""))
            .env("CARGO_TARGET_DIR", &target));
        let deb_dir = target.join("debian");
        let _ = std::fs::remove_dir_all(&deb_dir);
        run(Command::new("cargo")
            .args(["deb", "--no-build", "--no-strip"])
            .current_dir(repo(""))
            .env("CARGO_TARGET_DIR", &target));
        let rpm_dir = target.join("generate-rpm");
        let _ = std::fs::remove_dir_all(&rpm_dir);
        run(Command::new("cargo")
            .args(["generate-rpm", "--target-dir"])
            .arg(&target)
            .current_dir(repo("")));
        let only = |dir: &Path, extension: &str| {
            std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .find(|p| p.extension().is_some_and(|e| e == extension))
                .unwrap_or_else(|| panic!("no .{extension} in {}", dir.display()))
        };
        (only(&deb_dir, "deb"), only(&rpm_dir, "rpm"))
    }))
}

#[test]
fn the_deb_passes_lintian() {
    let Some((deb, _)) = packages() else { return };
    if !tool_available("lintian") {
        return;
    }
    // Every remaining tag is explained in deploy/debian/lintian-overrides.
    let output = Command::new("lintian")
        .args(["--fail-on", "error,warning", "--allow-root"])
        .arg(deb)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "lintian:\n{text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!text.contains("W: ") && !text.contains("E: "), "{text}");
}

#[test]
fn the_rpm_passes_rpmlint_and_carries_the_files_and_scripts() {
    let Some((_, rpm)) = packages() else { return };
    if !tool_available("rpmlint") || !tool_available("rpm") {
        return;
    }
    let output = Command::new("rpmlint")
        .arg("-r")
        .arg(repo("deploy/rpm/udts-exporter.rpmlintrc"))
        .arg(rpm)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "rpmlint:\n{text}");
    assert!(text.contains("0 errors, 0 warnings"), "{text}");

    let files = run(Command::new("rpm").args(["-qlp"]).arg(rpm));
    for path in [
        "/usr/bin/udts-exporter",
        "/etc/udts-exporter/config.toml",
        "/usr/lib/systemd/system/udts-exporter.service",
        "/usr/share/licenses/udts-exporter/LICENSE",
    ] {
        assert!(files.lines().any(|l| l == path), "{path} missing:\n{files}");
    }
    let config = run(Command::new("rpm").args(["-qp", "--configfiles"]).arg(rpm));
    assert_eq!(config.trim(), "/etc/udts-exporter/config.toml");
    // %config(noreplace), root:udts-exporter 0640.
    let dump = run(Command::new("rpm").args([
        "-qp",
        "--qf",
        "[%{FILENAMES} %{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILEFLAGS:fflags}\\n]",
    ]).arg(rpm));
    let line = |path: &str| {
        dump.lines()
            .find(|l| l.starts_with(&format!("{path} ")))
            .unwrap()
            .to_string()
    };
    assert_eq!(
        line("/etc/udts-exporter/config.toml"),
        "/etc/udts-exporter/config.toml -rw-r----- root:udts-exporter cn"
    );
    assert!(line("/usr/bin/udts-exporter").contains("-rwxr-xr-x root:root"));
    let scripts = run(Command::new("rpm").args(["-qp", "--scripts"]).arg(rpm));
    assert!(
        scripts.contains("useradd --system --gid udts-exporter"),
        "{scripts}"
    );
    assert!(
        scripts.contains("systemctl --no-reload enable udts-exporter.service"),
        "{scripts}"
    );
    assert!(
        !scripts.contains("systemctl start"),
        "enabled, not started: {scripts}"
    );
    // The unit is the one from deploy/systemd, not a copy that drifts.
    if !tool_available("rpm2cpio") {
        return;
    }
    let unit = run(Command::new("sh").arg("-c").arg(format!(
        "rpm2cpio {} | cpio -i --to-stdout ./usr/lib/systemd/system/udts-exporter.service 2>/dev/null",
        rpm.display()
    )));
    assert_eq!(
        unit,
        std::fs::read_to_string(repo("deploy/systemd/udts-exporter.service")).unwrap()
    );
}

fn mode_owner(path: &str) -> (u32, String) {
    let metadata = std::fs::metadata(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let owner = run(Command::new("stat").args(["-c", "%U:%G", path]));
    (
        metadata.permissions().mode() & 0o7777,
        owner.trim().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deb_installs_runs_as_its_user_keeps_an_edited_config_and_purges_cleanly() {
    let Some((deb, _)) = packages() else { return };
    if !running_as_root("dpkg -i a package") || !tool_available("systemd-analyze") {
        return;
    }
    let _ = Command::new("dpkg")
        .args(["--purge", "udts-exporter"])
        .output();
    run(Command::new("dpkg").arg("-i").arg(deb));

    // Files, owners and modes.
    assert_eq!(
        mode_owner("/usr/bin/udts-exporter"),
        (0o755, "root:root".into())
    );
    assert_eq!(
        mode_owner("/etc/udts-exporter"),
        (0o750, "root:udts-exporter".into())
    );
    assert_eq!(
        mode_owner("/etc/udts-exporter/config.toml"),
        (0o640, "root:udts-exporter".into())
    );
    let conffiles = run(Command::new("dpkg-query").args([
        "--showformat=${Conffiles}",
        "--show",
        "udts-exporter",
    ]));
    assert!(
        conffiles.contains("/etc/udts-exporter/config.toml"),
        "{conffiles}"
    );
    let unit = run(Command::new("dpkg").args(["-L", "udts-exporter"]))
        .lines()
        .find(|l| l.ends_with("/systemd/system/udts-exporter.service"))
        .expect("the unit is installed")
        .to_string();
    assert_eq!(
        std::fs::read_to_string(&unit).unwrap(),
        std::fs::read_to_string(repo("deploy/systemd/udts-exporter.service")).unwrap()
    );
    run(Command::new("getent").args(["passwd", "udts-exporter"]));
    // Enabled, not started.
    assert!(
        Path::new("/etc/systemd/system/multi-user.target.wants/udts-exporter.service").exists()
    );
    run(Command::new("systemd-analyze").arg("verify").arg(&unit));

    // The installed binary, as the created user, with the installed config and a demo-style
    // gateway, reaches /readyz; the key is where the unit's LoadCredential= reads it.
    let shutdown = tokio_util::sync::CancellationToken::new();
    let (_gateway, endpoint) = gateway_with(
        vec![SimTask::new(
            "udts-installed",
            Behaviour::Fixed(json!({"Status": "Synced"})),
        )],
        &shutdown,
    )
    .await;
    let key = "/etc/udts-exporter/private_key";
    std::fs::write(key, PRIVATE_KEY).unwrap();
    run(Command::new("chown").args(["root:udts-exporter", key]));
    std::fs::set_permissions(key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let mut child = tokio::process::Command::new("setpriv")
        .args([
            "--reuid=udts-exporter",
            "--regid=udts-exporter",
            "--init-groups",
        ])
        .args([
            "/usr/bin/udts-exporter",
            "--config",
            "/etc/udts-exporter/config.toml",
        ])
        .args(["--web.listen-address", "127.0.0.1:19749"])
        .env("UDTS_API__ENDPOINT", &endpoint)
        .env("UDTS_API__PUBLIC_KEY", PUBLIC_KEY)
        .env("UDTS_API__PRIVATE_KEY_FILE", key)
        // The installed example lists no task (its list is commented out): discover them.
        .env("UDTS_DISCOVERY__ENABLED", "true")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    wait_ready_within("127.0.0.1:19749".parse().unwrap(), Duration::from_secs(20)).await;
    let text = scrape("127.0.0.1:19749".parse().unwrap()).await;
    assert_eq!(
        value(&text, "udts_task_up", &task("udts-installed")),
        Some(1.0)
    );
    child.kill().await.unwrap();
    shutdown.cancel();

    // An upgrade (the same package again) keeps the operator's edits.
    let config = "/etc/udts-exporter/config.toml";
    let edited = format!(
        "{}\n# edited by the operator\n",
        std::fs::read_to_string(config).unwrap()
    );
    std::fs::write(config, &edited).unwrap();
    run(Command::new("dpkg")
        .args(["-i", "--force-confold"])
        .arg(deb));
    assert_eq!(std::fs::read_to_string(config).unwrap(), edited);

    // Purge: nothing of the package is left.
    run(Command::new("dpkg").args(["--purge", "udts-exporter"]));
    for path in [
        "/usr/bin/udts-exporter",
        "/etc/udts-exporter",
        unit.as_str(),
        "/etc/systemd/system/multi-user.target.wants/udts-exporter.service",
        "/usr/share/doc/udts-exporter",
    ] {
        assert!(!Path::new(path).exists(), "{path} is left after purge");
    }
    let status = Command::new("dpkg")
        .args(["-s", "udts-exporter"])
        .output()
        .unwrap();
    assert!(!status.status.success(), "the package is gone");
}

#[test]
fn cargo_package_ships_what_builds_and_no_test_or_screenshot_bloat() {
    // `cargo package` builds the crate from what it ships: a missing file fails here.
    run(Command::new("cargo")
        .args(["package", "--allow-dirty", "--locked"])
        .current_dir(repo("")));
    let output = Command::new("cargo")
        .args(["package", "--list", "--allow-dirty", "--locked"])
        .current_dir(repo(""))
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for shipped in [
        "src/main.rs",
        "Cargo.toml",
        "README.md",
        "LICENSE",
        "config.example.toml",
        "deploy/systemd/udts-exporter.service",
    ] {
        assert!(
            list.lines().any(|l| l == shipped),
            "{shipped} not shipped:\n{list}"
        );
    }
    for left_out in [
        "tests/",
        "benches/",
        "docs/screenshot.png",
        ".ci/",
        "target/",
    ] {
        assert!(
            !list.lines().any(|l| l.starts_with(left_out)),
            "{left_out} shipped:\n{list}"
        );
    }
    use figment::providers::{Format, Toml};
    let package: serde_json::Value = figment::Figment::from(Toml::file(repo("Cargo.toml")))
        .extract_inner("package")
        .unwrap();
    for key in [
        "repository",
        "keywords",
        "categories",
        "documentation",
        "description",
        "license",
    ] {
        assert!(!package[key].is_null(), "Cargo.toml [package] lacks {key}");
    }
}
