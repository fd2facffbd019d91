//! The shipped deployments start where they run: the real binary under what each platform does
//! to the process. The kubelet's Secret layout read as uid 65532, a `subset=pid` procfs like
//! systemd's `ProcSubset=pid`, and `systemd-analyze verify` on the unit. The first two need root
//! (CI runs as root) and skip with a notice otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{SystemTime, UNIX_EPOCH};

use common::*;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use udts_exporter::simulator::{Behaviour, SimTask};

/// The user and group the shipped images and manifests run as.
const NONROOT: u32 = 65532;
const AS_NONROOT: [&str; 6] = [
    "setpriv",
    "--reuid",
    "65532",
    "--regid",
    "65532",
    "--clear-groups",
];

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Lays out a Secret volume the way the kubelet's atomic writer does: the data in a timestamped
/// directory, `..data` pointing at it, and the key name a symlink through `..data`. Returns the
/// path the config names.
fn kubelet_secret_volume(root: &Path, owner: (u32, u32), mode: u32) -> PathBuf {
    let volume = root.join("secrets/udts");
    let stamp = volume.join("..2026_11_28_23_00_00.123456789");
    std::fs::create_dir_all(&stamp).unwrap();
    for dir in [root.join("secrets"), volume.clone(), stamp.clone()] {
        chmod(&dir, 0o755);
        std::os::unix::fs::chown(&dir, Some(0), Some(owner.1)).unwrap();
    }
    let file = stamp.join("udts_private_key");
    std::fs::write(&file, format!("{PRIVATE_KEY}\n")).unwrap();
    std::os::unix::fs::chown(&file, Some(owner.0), Some(owner.1)).unwrap();
    chmod(&file, mode);
    std::os::unix::fs::symlink(stamp.file_name().unwrap(), volume.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/udts_private_key", volume.join("udts_private_key")).unwrap();
    volume.join("udts_private_key")
}

/// A directory uid 65532 can read, with a config polling one task at `endpoint` with `key`.
fn world_readable_config(dir: &Path, endpoint: &str, key: &Path) -> PathBuf {
    chmod(dir, 0o755);
    let path = dir.join("config.toml");
    std::fs::write(
        &path,
        format!(
            "[api]\nendpoint = \"{endpoint}\"\npublic_key = \"{PUBLIC_KEY}\"\n\
             private_key_file = \"{}\"\ntimeout = \"1s\"\n[[tasks]]\nid = \"udts-a\"\n",
            key.display()
        ),
    )
    .unwrap();
    chmod(&path, 0o644);
    path
}

/// Starts the binary as 65532 on `config` and waits until it is ready.
async fn ready_as_nonroot(config: &Path) -> ExporterProcess {
    let exporter = spawn_exporter_via(
        &AS_NONROOT,
        [std::ffi::OsStr::new("--config"), config.as_os_str()],
        Stdio::inherit(),
    )
    .await;
    wait_ready(exporter.addr).await;
    exporter
}

/// Runs the binary as 65532 on `config` and returns its exit code and stderr (it must exit).
fn run_as_nonroot_expecting_exit(config: &Path) -> (Option<i32>, String) {
    let output = std::process::Command::new(AS_NONROOT[0])
        .args(&AS_NONROOT[1..])
        .arg(env!("CARGO_BIN_EXE_udts-exporter"))
        .arg("--config")
        .arg(config)
        .args(["--web.listen-address", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubernetes_secret_mount_is_read_as_the_nonroot_user_exactly_when_it_should_be() {
    if !running_as_root("start the exporter as uid 65532 and chown its key")
        || !tool_available("setpriv")
    {
        return;
    }
    let shutdown = CancellationToken::new();
    let (_gateway, endpoint) = gateway_with(
        vec![SimTask::new(
            "udts-a",
            Behaviour::Fixed(json!({"Status": "Synced"})),
        )],
        &shutdown,
    )
    .await;

    // With fsGroup = runAsGroup = 65532 and defaultMode 0440 (as shipped): root:65532 0440.
    let dir = tempfile::tempdir().unwrap();
    let key = kubelet_secret_volume(dir.path(), (0, NONROOT), 0o440);
    let config = world_readable_config(dir.path(), &endpoint, &key);
    let exporter = ready_as_nonroot(&config).await;
    let text = scrape(exporter.addr).await;
    assert_eq!(value(&text, "udts_task_up", &task("udts-a")), Some(1.0));
    drop(exporter);

    // Refused layouts, each with what the message must say. Without fsGroup the kubelet leaves
    // root:root 0400: no code can read it, so the message must say how to mount it.
    for (owner, mode, expected) in [
        ((0, 0), 0o400, &["api.private_key_file", "fsGroup"][..]),
        // Readable by others: refused even though the process could read it.
        ((0, NONROOT), 0o444, &["accessible by others"][..]),
        ((0, NONROOT), 0o460, &["writable by its group"][..]),
        // Owned by another non-root user: both users are named.
        (
            (1000, NONROOT),
            0o440,
            &["owned by uid 1000", "uid 65532"][..],
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let key = kubelet_secret_volume(dir.path(), owner, mode);
        let config = world_readable_config(dir.path(), &endpoint, &key);
        let (code, stderr) = run_as_nonroot_expecting_exit(&config);
        assert_eq!(code, Some(2), "{mode:o}: {stderr}");
        for text in expected {
            assert!(stderr.contains(text), "{mode:o}: {text}: {stderr}");
        }
        assert!(!stderr.contains(PRIVATE_KEY), "{stderr}");
    }

    // Owned by the exporter's own user, private to it (systemd's LoadCredential= does this).
    let dir = tempfile::tempdir().unwrap();
    let key = kubelet_secret_volume(dir.path(), (NONROOT, NONROOT), 0o400);
    let config = world_readable_config(dir.path(), &endpoint, &key);
    ready_as_nonroot(&config).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_metrics_are_true_under_a_pid_only_procfs() {
    if !running_as_root("mount a private subset=pid procfs") || !tool_available("unshare") {
        return;
    }
    // What ProcSubset=pid does: /proc without /proc/stat (and the rest of the system files).
    let exporter = spawn_exporter_via(
        &[
            "unshare",
            "--mount",
            "--pid",
            "--fork",
            "--kill-child",
            "sh",
            "-c",
            "mount -t proc -o subset=pid proc /proc && test ! -e /proc/stat && exec \"$@\"",
            "sh",
        ],
        ["demo"],
        Stdio::inherit(),
    )
    .await;
    wait_ready(exporter.addr).await;
    let text = scrape(exporter.addr).await;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let started = value(&text, "process_start_time_seconds", "").unwrap();
    assert!(
        (now - started).abs() < 60.0,
        "process_start_time_seconds {started} is not within a minute of {now}"
    );
    for family in [
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_threads",
    ] {
        let read = value(&text, family, "").unwrap_or(0.0);
        assert!(read > 0.0, "{family} is {read}");
    }
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    if !tool_available("systemd-analyze") {
        return;
    }
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/systemd/udts-exporter.service"),
    )
    .unwrap();
    assert!(unit.contains("ExecStart=/usr/bin/udts-exporter "));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("udts-exporter.service");
    std::fs::write(
        &path,
        unit.replace(
            "/usr/bin/udts-exporter",
            env!("CARGO_BIN_EXE_udts-exporter"),
        ),
    )
    .unwrap();
    let output = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    // Unknown or misspelt directives are only warnings; the unit must have none.
    assert!(stderr.trim().is_empty(), "{stderr}");
}

/// The listen backlog is the kernel's `net.core.somaxconn` even where systemd's
/// `ProcSubset=pid` hides `/proc/sys`: in a network namespace of its own whose `somaxconn` is
/// 3000 (no default would give that), under a `subset=pid` procfs, `ss` shows the listener's
/// backlog as 3000.
#[test]
fn the_listen_backlog_is_somaxconn_under_a_pid_only_procfs() {
    if !running_as_root("make a network namespace and mount a private procfs")
        || !tool_available("unshare")
        || !tool_available("ss")
    {
        return;
    }
    let script = r#"
        ip link set lo up
        sysctl -qw net.core.somaxconn=3000
        mount -t proc -o subset=pid proc /proc
        test ! -e /proc/sys/net/core/somaxconn || exit 3
        "$0" demo --web.listen-address 127.0.0.1:9741 >/dev/null 2>&1 &
        for _ in $(seq 100); do
            ss -ltnH 'sport = :9741' | grep -q LISTEN && break
            sleep 0.1
        done
        ss -ltnH 'sport = :9741'
        kill $!
    "#;
    let output = std::process::Command::new("unshare")
        .args(["--net", "--mount", "--pid", "--fork", "--kill-child"])
        .args(["sh", "-c", script, env!("CARGO_BIN_EXE_udts-exporter")])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // State, Recv-Q, Send-Q (a listener's backlog), local address.
    let columns: Vec<&str> = said.split_whitespace().collect();
    assert_eq!(columns.get(2), Some(&"3000"), "{said}");
}
