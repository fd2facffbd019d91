//! A throwaway MariaDB from Debian's `mariadb-server`: a temporary data directory, binary
//! logging on, loopback only, killed when dropped. Tests write, rotate and purge as root over
//! the socket with the `mariadb` client; the exporter connects over TCP as a monitoring user.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The monitoring user's password in every test server.
pub const MONITOR_PASSWORD: &str = "monitor-pw-3c9e1f";

/// A running server.
pub struct MariaDb {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub port: u16,
}

/// Whether the server can be started here (root and the programs); skips with a notice, or
/// fails under `UDTS_REQUIRE_TOOLS=1`.
pub fn available() -> bool {
    super::tool_available("mariadbd") && super::running_as_root("run mariadbd as root")
}

impl MariaDb {
    /// Installs a data directory and starts the server, with the binlog on unless `log_bin`
    /// is false; creates `udts_monitor` (BINLOG MONITOR only), `udts_nobody` (no privilege)
    /// and a table `t.rows`.
    pub fn start(log_bin: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        // Each server its own temporary directory: installs running side by side collide in
        // a shared /tmp.
        let tmp = dir.path().join("tmp");
        std::fs::create_dir(&tmp).unwrap();
        let output = Command::new("mariadb-install-db")
            .args([
                "--no-defaults",
                "--user=root",
                "--auth-root-authentication-method=normal",
            ])
            .arg(format!("--datadir={}", data.display()))
            .env("TMPDIR", &tmp)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let mut server = Self {
            child: None,
            dir,
            port: super::free_port(),
        };
        server.launch(log_bin);
        server.sql(&format!(
            "CREATE USER 'udts_monitor'@'127.0.0.1' IDENTIFIED BY '{MONITOR_PASSWORD}';\
             GRANT BINLOG MONITOR ON *.* TO 'udts_monitor'@'127.0.0.1';\
             CREATE USER 'udts_nobody'@'127.0.0.1' IDENTIFIED BY '{MONITOR_PASSWORD}';\
             CREATE DATABASE t; CREATE TABLE t.rows (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(200));"
        ));
        server
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    fn launch(&mut self, log_bin: bool) {
        let mut command = Command::new("mariadbd");
        command
            .args(["--no-defaults", "--user=root", "--bind-address=127.0.0.1"])
            .arg(format!("--datadir={}", self.data().display()))
            .arg(format!("--socket={}", self.socket().display()))
            .arg(format!("--port={}", self.port))
            .arg(format!(
                "--pid-file={}",
                self.dir.path().join("pid").display()
            ))
            .arg(format!(
                "--tmpdir={}",
                self.dir.path().join("tmp").display()
            ))
            .args([
                "--server-id=1",
                "--binlog-format=ROW",
                "--skip-name-resolve",
            ]);
        if log_bin {
            command.arg(format!(
                "--log-bin={}",
                self.data().join("mysql-bin").display()
            ));
        }
        let log = std::fs::File::create(self.dir.path().join("server.log")).unwrap();
        self.child = Some(command.stdout(Stdio::null()).stderr(log).spawn().unwrap());
        let started = Instant::now();
        while !self.ping() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "mariadbd did not start: {}",
                std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn ping(&self) -> bool {
        Command::new("mariadb")
            .arg(format!("--socket={}", self.socket().display()))
            .args(["-uroot", "-e", "SELECT 1"])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// Runs `statements` as root; returns the tab-separated rows, without headers.
    pub fn sql(&self, statements: &str) -> Vec<Vec<String>> {
        let output = Command::new("mariadb")
            .arg(format!("--socket={}", self.socket().display()))
            .args(["-uroot", "--batch", "--skip-column-names", "-e", statements])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{statements}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|line| line.split('\t').map(str::to_string).collect())
            .collect()
    }

    /// `n` autocommit inserts: `n` transactions, `n` GTIDs.
    pub fn write(&self, n: usize) {
        let statements: String = (0..n)
            .map(|i| format!("INSERT INTO t.rows (v) VALUES (REPEAT('x', {}));", 50 + i))
            .collect();
        self.sql(&statements);
    }

    /// The head: (file, position).
    pub fn head(&self) -> (String, u64) {
        let rows = self.sql("SHOW MASTER STATUS");
        (rows[0][0].clone(), rows[0][1].parse().unwrap())
    }

    /// `SHOW BINARY LOGS`: (file, size).
    pub fn binary_logs(&self) -> Vec<(String, u64)> {
        self.sql("SHOW BINARY LOGS")
            .into_iter()
            .map(|row| (row[0].clone(), row[1].parse().unwrap()))
            .collect()
    }

    /// `@@global.gtid_binlog_pos`.
    pub fn gtid(&self) -> String {
        self.sql("SELECT @@global.gtid_binlog_pos")[0][0].clone()
    }

    /// Stops the server (SIGKILL: a crash, as far as clients can tell).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `mysql://user@127.0.0.1:port`.
    pub fn url(&self, user: &str) -> String {
        format!("mysql://{user}@127.0.0.1:{}", self.port)
    }

    /// A password file the key file rule admits.
    pub fn password_file(&self, password: &str) -> PathBuf {
        let path = self.dir.path().join(format!("password-{}", password.len()));
        std::fs::write(&path, format!("{password}\n")).unwrap();
        super::private_to_owner(&path);
        path
    }

    /// Where the server logs.
    pub fn log(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        self.kill();
    }
}
