//! Reading a MySQL or MariaDB source with `mysql_async` (tokio, rustls): one connection kept
//! open, three read-only statements per round (the head, `SHOW BINARY LOGS`, the executed GTID
//! set), never a write and never a statement that takes a lock.

use std::future::Future;
use std::pin::Pin;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, Row, SslOpts};
use secrecy::ExposeSecret;

use super::{BinlogReader, BinlogReading, Reading, SourceError};
use crate::config::{Connection, TlsMode};

/// The client options for `connection`, with TLS as its mode says when `tls`.
fn options(connection: &Connection, tls: bool) -> OptsBuilder {
    let mut options = OptsBuilder::default()
        .ip_or_hostname(connection.host.clone())
        .tcp_port(connection.port)
        .user(Some(connection.user.clone()))
        .pass(
            connection
                .password
                .as_ref()
                .map(|p| p.expose_secret().to_string()),
        )
        .prefer_socket(false)
        .stmt_cache_size(0);
    if tls {
        let mut ssl = SslOpts::default();
        match connection.tls {
            TlsMode::Disabled => {}
            TlsMode::Preferred | TlsMode::Required => {
                ssl = ssl
                    .with_danger_accept_invalid_certs(true)
                    .with_danger_skip_domain_validation(true);
            }
            TlsMode::VerifyCa => ssl = ssl.with_danger_skip_domain_validation(true),
            TlsMode::VerifyIdentity => {}
        }
        if let Some(ca) = &connection.ca_pem {
            ssl = ssl.with_root_certs(vec![ca.clone().into()]);
        }
        options = options.ssl_opts(Some(ssl));
    }
    options
}

/// Which statements this server answers, learned on connecting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    /// MySQL 8.2+: `SHOW BINARY LOG STATUS`, `@@global.gtid_executed`.
    MySqlModern,
    /// MySQL before 8.2: `SHOW MASTER STATUS`, `@@global.gtid_executed`.
    MySqlLegacy,
    /// MariaDB: `SHOW MASTER STATUS` (alias of `SHOW BINLOG STATUS`), `@@global.gtid_binlog_pos`.
    MariaDb,
}

impl Flavor {
    /// From `SELECT VERSION()`: `10.11.6-MariaDB-0+deb12u1`, `8.4.3`, `5.7.44-log`.
    fn of(version: &str) -> Self {
        if version.to_ascii_lowercase().contains("mariadb") {
            return Self::MariaDb;
        }
        let mut numbers = version
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|n| n.parse::<u32>().ok());
        let (major, minor) = (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0));
        if (major, minor) >= (8, 2) {
            Self::MySqlModern
        } else {
            Self::MySqlLegacy
        }
    }

    fn head_statement(self) -> &'static str {
        match self {
            Self::MySqlModern => "SHOW BINARY LOG STATUS",
            Self::MySqlLegacy | Self::MariaDb => "SHOW MASTER STATUS",
        }
    }

    fn gtid_statement(self) -> &'static str {
        match self {
            Self::MySqlModern | Self::MySqlLegacy => "SELECT @@global.gtid_executed",
            Self::MariaDb => "SELECT @@global.gtid_binlog_pos",
        }
    }
}

/// A source read over one kept-open connection.
pub struct MySqlReader {
    connection: Connection,
    open: Option<(Conn, Flavor)>,
}

impl MySqlReader {
    /// A reader that connects on its first round.
    pub fn new(connection: Connection) -> Self {
        Self {
            connection,
            open: None,
        }
    }

    async fn connect(&self) -> Result<(Conn, Flavor), SourceError> {
        crate::tls_provider::install();
        let use_tls = self.connection.tls != TlsMode::Disabled;
        let mut result = Conn::new(options(&self.connection, use_tls)).await;
        if self.connection.tls == TlsMode::Preferred
            && matches!(
                result,
                Err(mysql_async::Error::Driver(
                    mysql_async::DriverError::NoClientSslFlagFromServer
                ))
            )
        {
            result = Conn::new(options(&self.connection, false)).await;
        }
        let mut conn = result.map_err(classify)?;
        let version: Option<String> = conn
            .query_first("SELECT VERSION()")
            .await
            .map_err(classify)?;
        Ok((conn, Flavor::of(version.as_deref().unwrap_or_default())))
    }

    async fn round(&mut self) -> Result<BinlogReading, SourceError> {
        if self.open.is_none() {
            self.open = Some(self.connect().await?);
        }
        let Some((conn, flavor)) = self.open.as_mut() else {
            return Err(unreachable_error("not connected"));
        };
        let result = read_state(conn, *flavor).await;
        if result
            .as_ref()
            .is_err_and(|e| e.reason != "binlog_disabled")
        {
            // Start afresh next round: the connection may be what failed.
            self.open = None;
        }
        result
    }
}

impl BinlogReader for MySqlReader {
    fn read(&mut self) -> Pin<Box<dyn Future<Output = Result<Reading, SourceError>> + Send + '_>> {
        Box::pin(async move { self.round().await.map(Reading::Binlog) })
    }
}

async fn read_state(conn: &mut Conn, flavor: Flavor) -> Result<BinlogReading, SourceError> {
    let head: Option<Row> = conn
        .query_first(flavor.head_statement())
        .await
        .map_err(classify)?;
    let Some(head) = head else {
        return Err(SourceError {
            reason: "binlog_disabled",
            message: "the server has binary logging off (the head statement returned no row)".into(),
            fix: "start the source with log_bin (and server_id) set: UDTS incremental sync needs the binlog too",
        });
    };
    let head_file = text_column(&head, "File")?;
    let head_position = number_column(&head, "Position")?;
    let rows: Vec<Row> = conn.query("SHOW BINARY LOGS").await.map_err(classify)?;
    let mut files = Vec::with_capacity(rows.len());
    for row in &rows {
        files.push((
            text_column(row, "Log_name")?,
            number_column(row, "File_size")?,
        ));
    }
    let gtid_text: Option<Option<String>> = conn
        .query_first(flavor.gtid_statement())
        .await
        .map_err(classify)?;
    Ok(BinlogReading {
        head_file,
        head_position,
        files,
        gtid_text: gtid_text.flatten(),
    })
}

fn column_missing(name: &str) -> SourceError {
    SourceError {
        reason: "malformed",
        message: format!("the answer has no usable `{name}` column"),
        fix: "report it with the server's version: its answer is not in a form the exporter knows",
    }
}

fn text_column(row: &Row, name: &str) -> Result<String, SourceError> {
    row.get_opt::<String, _>(name)
        .and_then(Result::ok)
        .ok_or_else(|| column_missing(name))
}

fn number_column(row: &Row, name: &str) -> Result<u64, SourceError> {
    row.get_opt::<u64, _>(name)
        .and_then(Result::ok)
        .ok_or_else(|| column_missing(name))
}

fn unreachable_error(message: impl Into<String>) -> SourceError {
    SourceError {
        reason: "unreachable",
        message: message.into(),
        fix: "check url's host and port, the network path and that the server runs",
    }
}

/// The client's error, by what the operator does about it.
fn classify(error: mysql_async::Error) -> SourceError {
    use mysql_async::{DriverError, Error};
    match error {
        Error::Server(server) => match server.code {
            // ER_ACCESS_DENIED_ERROR, ER_DBACCESS_DENIED_ERROR
            1045 | 1044 => SourceError {
                reason: "auth",
                message: server.message,
                fix: "check the user in url and its password (password_file or password_env)",
            },
            // ER_SPECIFIC_ACCESS_DENIED_ERROR: the message names the privilege.
            1227 => SourceError {
                reason: "privilege",
                message: server.message,
                fix: "GRANT BINLOG MONITOR (MariaDB 10.5+) or REPLICATION CLIENT (MySQL) ON *.* TO the monitoring user",
            },
            _ => SourceError {
                reason: "server_error",
                message: format!("server error {}: {}", server.code, server.message),
                fix: "see the server's message; the exporter only reads SHOW statements and two variables",
            },
        },
        Error::Driver(DriverError::NoClientSslFlagFromServer) => SourceError {
            reason: "tls",
            message: "the server does not offer TLS".into(),
            fix: "enable TLS on the server, or set tls = \"preferred\" or \"disabled\"",
        },
        Error::Io(io) => {
            let text = io.to_string();
            if text.to_ascii_lowercase().contains("tls") || text.contains("certificate") {
                SourceError {
                    reason: "tls",
                    message: text,
                    fix: "check ca_file and the server's certificate (verify_identity also needs the host name in it)",
                }
            } else {
                unreachable_error(text)
            }
        }
        other => unreachable_error(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    #[test]
    fn the_version_decides_the_statements() {
        for (version, head, gtid) in [
            (
                "10.11.6-MariaDB-0+deb12u1-log",
                "SHOW MASTER STATUS",
                "gtid_binlog_pos",
            ),
            ("8.4.3", "SHOW BINARY LOG STATUS", "gtid_executed"),
            (
                "9.1.0-commercial",
                "SHOW BINARY LOG STATUS",
                "gtid_executed",
            ),
            ("8.2.0", "SHOW BINARY LOG STATUS", "gtid_executed"),
            ("8.0.36-log", "SHOW MASTER STATUS", "gtid_executed"),
            ("5.7.44", "SHOW MASTER STATUS", "gtid_executed"),
        ] {
            let flavor = Flavor::of(version);
            assert_eq!(flavor.head_statement(), head, "{version}");
            assert!(flavor.gtid_statement().ends_with(gtid), "{version}");
        }
    }

    #[test]
    fn the_password_never_shows_in_debug_output() {
        let connection = Connection {
            host: "db".into(),
            port: 3306,
            user: "monitor".into(),
            password: Some(SecretString::from("hunter2-secret")),
            tls: TlsMode::Preferred,
            ca_pem: None,
        };
        let debug = format!("{connection:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("redacted"), "{debug}");
    }
}
