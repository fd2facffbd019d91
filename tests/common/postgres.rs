//! A real PostgreSQL server from Debian's `postgresql`, on a temporary data directory, run as
//! the `postgres` user (the server refuses root), with `wal_level = logical` and a small
//! `max_slot_wal_keep_size`, for the tests of PostgreSQL sources.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

/// The monitoring role's password.
pub const MONITOR_PASSWORD: &str = "pg-monitor-secret";

/// The bound on what a slot may retain before the server invalidates it.
pub const MAX_SLOT_WAL_KEEP: u64 = 64 * 1024 * 1024;

/// The newest installed server's programs, if any.
fn bin() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| Some(entry.ok()?.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    found.sort();
    found.pop()
}

/// Whether the server can be started here (root, to drop to `postgres`, and the programs);
/// skips with a notice, or fails under `UDTS_REQUIRE_TOOLS=1`.
pub fn available() -> bool {
    if bin().is_none() {
        if std::env::var("UDTS_REQUIRE_TOOLS").as_deref() == Ok("1") {
            panic!("PostgreSQL is required (UDTS_REQUIRE_TOOLS=1): apt-get install postgresql");
        }
        eprintln!("SKIPPED: PostgreSQL's server not found; .ci/run installs it (apt-get install postgresql)");
        return false;
    }
    super::running_as_root("start PostgreSQL as the postgres user")
}

/// A running server; stopped when dropped.
pub struct Postgres {
    bin: PathBuf,
    pub dir: tempfile::TempDir,
    pub port: u16,
}

impl Postgres {
    /// initdb, then starts the server on loopback with `udts_monitor` (a plain login role with
    /// no grant) able to log in with [`MONITOR_PASSWORD`].
    pub fn start() -> Self {
        Self::start_with("")
    }

    /// [`Postgres::start`] with more server options (`-c name=value ...`), which come last
    /// and so win.
    pub fn start_with(extra: &str) -> Self {
        let bin = bin().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success());
        let data = dir.path().join("data");
        let output = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(bin.join("initdb"))
            .args([
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-D",
            ])
            .arg(&data)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let port = super::free_port();
        let options = format!(
            "-c port={port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} \
             -c wal_level=logical -c max_slot_wal_keep_size={}MB -c max_wal_size=96MB \
             -c min_wal_size=32MB -c max_replication_slots=64 -c fsync=off {extra}",
            dir.path().display(),
            MAX_SLOT_WAL_KEEP / 1024 / 1024
        );
        let output = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .args(["-o", &options, "-l"])
            .arg(dir.path().join("server.log"))
            .args(["-w", "start"])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let server = Self { bin, dir, port };
        server.sql(&format!(
            "CREATE ROLE udts_monitor LOGIN PASSWORD '{MONITOR_PASSWORD}'; \
             CREATE TABLE rows (id serial PRIMARY KEY, payload text);"
        ));
        server
    }

    /// Runs `sql` as the superuser over the server's socket; returns the first row's columns
    /// separated by `|`.
    pub fn sql(&self, sql: &str) -> String {
        let output = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(self.dir.path())
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-c",
                sql,
            ])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    /// Writes about `bytes` of WAL (rows of 1 KiB).
    pub fn write(&self, bytes: u64) {
        self.sql(&format!(
            "INSERT INTO rows (payload) SELECT repeat('x', 1000) FROM generate_series(1, {})",
            (bytes / 1024).max(1)
        ));
    }

    /// The URL of the server for `user`.
    pub fn url(&self, user: &str) -> String {
        format!("postgresql://{user}@127.0.0.1:{}/postgres", self.port)
    }

    /// A file holding `password`, private to its owner, as the exporter's key file rule wants.
    pub fn password_file(&self, password: &str) -> PathBuf {
        let path = self.dir.path().join(format!("password-{}", password.len()));
        std::fs::write(&path, password).unwrap();
        super::private_to_owner(&path);
        path
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}
