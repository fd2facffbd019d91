//! Reading a PostgreSQL source with `tokio-postgres` (rustls for TLS): one connection kept open.
//! On connecting, the server's version, whether it is a standby and its `wal_level` (a standby
//! or a `wal_level` below `logical` is refused with its reason: UDTS reads neither); each round
//! two read-only statements whatever the number of slots and tasks: the current WAL position
//! and `pg_replication_slots`, with the columns the server's version has. Every value is read
//! as text and parsed here, so one odd row fails that row only and the parsing can be fuzzed.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use secrecy::ExposeSecret;
use tokio_postgres::config::SslMode;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};
use tokio_rustls::rustls;

use super::{BinlogReader, Reading, SourceError};
use crate::config::{Connection, TlsMode};

/// One replication slot as `pg_replication_slots` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotRow {
    pub name: String,
    /// The output plugin (`test_decoding`, `pgoutput`, ...); `None` for a physical slot.
    pub plugin: Option<String>,
    /// `logical` or `physical`.
    pub slot_type: String,
    /// The database of a logical slot.
    pub database: Option<String>,
    /// Whether a consumer is connected.
    pub active: bool,
    /// The oldest WAL the slot still needs; `None` once invalidated.
    pub restart_lsn: Option<u64>,
    /// How far the consumer confirmed (9.6+, logical slots).
    pub confirmed_flush_lsn: Option<u64>,
    /// `reserved`, `extended`, `unreserved` or `lost` (13+).
    pub wal_status: Option<String>,
    /// Bytes of WAL left before the slot is invalidated (13+); `None` when unbounded or lost.
    pub safe_wal_size: Option<i64>,
}

/// What one round read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalReading {
    /// Why each `pg_replication_slots` row this round left out was (one odd row costs that
    /// slot only); counted as `udts_source_errors_total{reason="malformed_slot_row"}`.
    pub skipped: Vec<String>,
    /// The current WAL position, bytes.
    pub lsn: u64,
    /// Every replication slot, watched or not.
    pub slots: Vec<SlotRow>,
}

/// An LSN `X/Y` (hex) as a byte position, `(X << 32) | Y`.
pub fn parse_lsn(text: &str) -> Option<u64> {
    let (high, low) = text.trim().split_once('/')?;
    let valid = |part: &str| !part.is_empty() && part.len() <= 8;
    if !valid(high) || !valid(low) {
        return None;
    }
    let high = u64::from_str_radix(high, 16).ok()?;
    let low = u64::from_str_radix(low, 16).ok()?;
    Some((high << 32) | low)
}

/// The statement of the current WAL position on a server of `version`.
pub fn lsn_statement(version: u32) -> &'static str {
    if version < 100_000 {
        "SELECT pg_current_xlog_location()::text"
    } else {
        "SELECT pg_current_wal_lsn()::text"
    }
}

/// The statement of the slots on a server of `version`: the same nine text columns, NULL where
/// the version has no such column.
pub fn slots_statement(version: u32) -> String {
    let confirmed = if version >= 90_600 {
        "confirmed_flush_lsn::text"
    } else {
        "NULL::text"
    };
    let (wal_status, safe) = if version >= 130_000 {
        ("wal_status::text", "safe_wal_size::text")
    } else {
        ("NULL::text", "NULL::text")
    };
    format!(
        "SELECT slot_name::text, plugin::text, slot_type::text, database::text, active::text, \
         restart_lsn::text, {confirmed}, {wal_status}, {safe} FROM pg_replication_slots \
         ORDER BY slot_name"
    )
}

/// The `wal_status` values PostgreSQL documents (13 and later).
pub const WAL_STATUSES: [&str; 4] = ["reserved", "extended", "unreserved", "lost"];

/// One slot from its nine text columns, in [`slots_statement`]'s order.
pub fn parse_slot(columns: &[Option<&str>]) -> Result<SlotRow, String> {
    let [name, plugin, slot_type, database, active, restart, confirmed, wal_status, safe] = columns
    else {
        return Err(format!("a slot row of {} columns, not 9", columns.len()));
    };
    let name = name.ok_or("a slot without a name")?.to_string();
    let lsn = |column: &Option<&str>, what: &str| match column {
        None => Ok(None),
        Some(text) => parse_lsn(text)
            .map(Some)
            .ok_or_else(|| format!("slot {name}: {what} `{text}` is not an LSN (X/Y)")),
    };
    if let Some(status) = wal_status.filter(|s| !WAL_STATUSES.contains(s)) {
        return Err(format!(
            "slot {name}: wal_status `{status}` is none of {}",
            WAL_STATUSES.join(", ")
        ));
    }
    let safe_wal_size = match safe {
        None => None,
        Some(text) => Some(
            text.parse::<i64>()
                .map_err(|_| format!("slot {name}: safe_wal_size `{text}` is not a number"))?,
        ),
    };
    Ok(SlotRow {
        plugin: plugin.map(str::to_string),
        slot_type: slot_type.unwrap_or("logical").to_string(),
        database: database.map(str::to_string),
        active: matches!(*active, Some("t" | "true")),
        restart_lsn: lsn(restart, "restart_lsn")?,
        confirmed_flush_lsn: lsn(confirmed, "confirmed_flush_lsn")?,
        wal_status: wal_status.map(str::to_string),
        safe_wal_size,
        name,
    })
}

/// A source read over one kept-open connection.
pub struct PostgresReader {
    connection: Connection,
    database: String,
    open: Option<(Client, u32)>,
    /// Why rows were skipped, each logged once.
    skipped: std::collections::HashSet<String>,
}

impl PostgresReader {
    /// A reader that connects on its first round.
    pub fn new(connection: Connection, database: String) -> Self {
        Self {
            connection,
            database,
            open: None,
            skipped: std::collections::HashSet::new(),
        }
    }

    fn config(&self) -> tokio_postgres::Config {
        let connection = &self.connection;
        let mut config = tokio_postgres::Config::new();
        config
            .host(&connection.host)
            .port(connection.port)
            .user(&connection.user)
            .dbname(&self.database)
            .application_name("udts-exporter")
            .ssl_mode(match connection.tls {
                TlsMode::Disabled => SslMode::Disable,
                TlsMode::Preferred => SslMode::Prefer,
                _ => SslMode::Require,
            });
        if let Some(password) = &connection.password {
            config.password(password.expose_secret());
        }
        config
    }

    async fn connect(&self) -> Result<(Client, u32), SourceError> {
        let config = self.config();
        let client = if self.connection.tls == TlsMode::Disabled {
            let (client, connection) = config.connect(NoTls).await.map_err(explain)?;
            tokio::spawn(connection);
            client
        } else {
            crate::tls_provider::install();
            let tls = tokio_postgres_rustls::MakeRustlsConnect::new(client_tls(&self.connection)?);
            let (client, connection) = config.connect(tls).await.map_err(explain)?;
            tokio::spawn(connection);
            client
        };
        let setting = |row: Option<tokio_postgres::Row>| -> Option<String> { row?.get(0) };
        let version = setting(
            client
                .query_opt("SELECT current_setting('server_version_num')", &[])
                .await
                .map_err(explain)?,
        )
        .and_then(|v| v.parse::<u32>().ok())
        .ok_or_else(|| malformed("server_version_num is not a number".into()))?;
        let standby = setting(
            client
                .query_opt("SELECT pg_is_in_recovery()::text", &[])
                .await
                .map_err(explain)?,
        );
        if standby.as_deref() == Some("true") {
            return Err(SourceError {
                reason: "standby",
                message: "the server is a standby (in recovery)".into(),
                fix: "point url at the primary: UDTS's slots and the WAL position live there",
            });
        }
        let wal_level = setting(
            client
                .query_opt("SELECT current_setting('wal_level')", &[])
                .await
                .map_err(explain)?,
        );
        if wal_level.as_deref() != Some("logical") {
            return Err(SourceError {
                reason: "wal_level",
                message: format!(
                    "wal_level is {}, not logical",
                    wal_level.as_deref().unwrap_or("unknown")
                ),
                fix: "set wal_level = logical on the source (a restart): UDTS's incremental \
                      phase needs it",
            });
        }
        Ok((client, version))
    }

    async fn round(client: &Client, version: u32) -> Result<WalReading, SourceError> {
        let head = client
            .query_one(lsn_statement(version), &[])
            .await
            .map_err(explain)?;
        let text: Option<String> = head.get(0);
        let lsn = text
            .as_deref()
            .and_then(parse_lsn)
            .ok_or_else(|| malformed(format!("the WAL position {text:?} is not an LSN (X/Y)")))?;
        let rows = client
            .query(slots_statement(version).as_str(), &[])
            .await
            .map_err(explain)?;
        let (slots, skipped) = parse_slots(
            rows.iter()
                .map(|row| (0..row.len()).map(|i| row.get(i)).collect()),
        );
        Ok(WalReading {
            skipped,
            lsn,
            slots,
        })
    }
}

impl BinlogReader for PostgresReader {
    fn read(&mut self) -> Pin<Box<dyn Future<Output = Result<Reading, SourceError>> + Send + '_>> {
        Box::pin(async move {
            if self
                .open
                .as_ref()
                .is_none_or(|(client, _)| client.is_closed())
            {
                self.open = None;
                self.open = Some(self.connect().await?);
            }
            let Some((client, version)) = &self.open else {
                return Err(malformed("no connection".into()));
            };
            let result = Self::round(client, *version).await;
            if result.is_err() {
                // Reconnect next round: the error may have left the session unusable.
                self.open = None;
            }
            result.map(|reading| {
                for why in &reading.skipped {
                    if self.skipped.len() < 64 && self.skipped.insert(why.clone()) {
                        tracing::warn!(
                            database = %self.database,
                            reason = %why,
                            "a replication slot row was left out: the server's answer is not in a \
                             form the exporter knows (report it)"
                        );
                    }
                }
                Reading::Wal(reading)
            })
        })
    }
}

/// The slots of one `pg_replication_slots` answer, and why each row left out was: one odd row
/// fails that row only, never the source's other slots and lags.
pub fn parse_slots<'a>(
    rows: impl IntoIterator<Item = Vec<Option<&'a str>>>,
) -> (Vec<SlotRow>, Vec<String>) {
    let mut slots = Vec::new();
    let mut skipped = Vec::new();
    for columns in rows {
        match parse_slot(&columns) {
            Ok(slot) => slots.push(slot),
            Err(why) => skipped.push(why),
        }
    }
    (slots, skipped)
}

fn malformed(message: String) -> SourceError {
    SourceError {
        reason: "malformed",
        message,
        fix: "report it: the server's answer is not in a form the exporter knows",
    }
}

/// A client error in the exporter's reasons, with the fix; never the password.
fn explain(error: tokio_postgres::Error) -> SourceError {
    let code = error.code().cloned();
    let message = match error.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => error.to_string(),
    };
    match code {
        Some(code)
            if code == SqlState::INVALID_PASSWORD
                || code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION =>
        {
            SourceError {
                reason: "auth",
                message,
                fix: "check the user in url and its password (password_file or password_env), \
                      and that pg_hba.conf lets it in from the exporter's address",
            }
        }
        Some(code) if code == SqlState::INSUFFICIENT_PRIVILEGE => SourceError {
            reason: "privilege",
            message,
            fix: "GRANT pg_monitor TO the monitoring user (it reads, never writes)",
        },
        Some(_) => SourceError {
            reason: "server_error",
            message,
            fix: "see the server's message",
        },
        None if message.to_ascii_lowercase().contains("tls")
            || message.to_ascii_lowercase().contains("certificate") =>
        {
            SourceError {
                reason: "tls",
                message,
                fix: "check tls and ca_file of the source against the server's certificate",
            }
        }
        None => SourceError {
            reason: "unreachable",
            message,
            fix: "check the host and port in url, and that the exporter can reach them",
        },
    }
}

/// The rustls client configuration of a TLS mode: `preferred` and `required` encrypt without
/// verifying (as libpq's `prefer` and `require` do), `verify_ca` checks the chain against
/// `ca_file` (or the system roots) for any host name, `verify_identity` checks it all.
fn client_tls(connection: &Connection) -> Result<rustls::ClientConfig, SourceError> {
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::client::WebPkiServerVerifier;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

    #[derive(Debug)]
    struct Verifier {
        /// The chain's check, for `verify_ca` and `verify_identity`.
        chain: Option<Arc<WebPkiServerVerifier>>,
        check_name: bool,
        provider: Arc<rustls::crypto::CryptoProvider>,
    }
    impl ServerCertVerifier for Verifier {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            intermediates: &[CertificateDer<'_>],
            server_name: &ServerName<'_>,
            ocsp: &[u8],
            now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            let Some(chain) = &self.chain else {
                return Ok(ServerCertVerified::assertion());
            };
            match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. },
                )) if !self.check_name => Ok(ServerCertVerified::assertion()),
                other => other,
            }
        }
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            // The handshake's own signature is checked in every mode: encrypted to whoever
            // holds the certificate's key, verified or not.
            rustls::crypto::verify_tls12_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }
        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }
        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.provider
                .signature_verification_algorithms
                .supported_schemes()
        }
    }

    let failed = |message: String| SourceError {
        reason: "tls",
        message,
        fix: "check ca_file: a PEM file of the CA that issued the server's certificate",
    };
    let provider = Arc::new(crate::tls_provider::provider());
    let verifies = matches!(connection.tls, TlsMode::VerifyCa | TlsMode::VerifyIdentity);
    let mut roots = rustls::RootCertStore::empty();
    match &connection.ca_pem {
        _ if !verifies => {}
        Some(pem) => {
            for certificate in CertificateDer::pem_slice_iter(pem) {
                let certificate = certificate.map_err(|e| failed(format!("ca_file: {e}")))?;
                roots
                    .add(certificate)
                    .map_err(|e| failed(format!("ca_file: {e}")))?;
            }
        }
        None => {
            for certificate in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(certificate);
            }
        }
    }
    // The modes that do not verify need no CA at all (an image without a system store).
    let chain = if verifies {
        Some(
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                .build()
                .map_err(|e| failed(format!("no CA to verify the server with: {e}")))?,
        )
    } else {
        None
    };
    let verifier = Verifier {
        chain,
        check_name: connection.tls == TlsMode::VerifyIdentity,
        provider: Arc::clone(&provider),
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| failed(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsns_parse_as_the_server_writes_them_and_nothing_else() {
        assert_eq!(parse_lsn("0/16B3748"), Some(0x16B_3748));
        assert_eq!(parse_lsn("1/0"), Some(1 << 32));
        assert_eq!(parse_lsn("FFFFFFFF/FFFFFFFF"), Some(u64::MAX));
        for bad in [
            "",
            "/",
            "16B3748",
            "0/",
            "/1",
            "G/0",
            "1/2/3",
            "100000000/0",
            "-1/0",
        ] {
            assert_eq!(parse_lsn(bad), None, "{bad}");
        }
    }

    #[test]
    fn each_version_gets_the_statements_it_answers() {
        assert!(lsn_statement(90_624).contains("pg_current_xlog_location"));
        assert!(lsn_statement(100_000).contains("pg_current_wal_lsn"));
        let old = slots_statement(90_500);
        assert!(!old.contains("confirmed_flush_lsn") && !old.contains("wal_status"));
        let middle = slots_statement(120_000);
        assert!(middle.contains("confirmed_flush_lsn") && !middle.contains("wal_status"));
        let new = slots_statement(170_000);
        assert!(new.contains("wal_status") && new.contains("safe_wal_size"));
    }

    /// Rows as 9.4, 12 and 15 answer the statement for their version.
    #[test]
    fn recorded_rows_of_each_version_parse() {
        let v94 = [
            Some("udts_abc"),
            Some("test_decoding"),
            Some("logical"),
            Some("postgres"),
            Some("f"),
            Some("0/3000060"),
            None,
            None,
            None,
        ];
        let slot = parse_slot(&v94).unwrap();
        assert_eq!(slot.restart_lsn, Some(0x300_0060));
        assert_eq!((slot.confirmed_flush_lsn, slot.wal_status), (None, None));
        let v15_lost = [
            Some("udts_lost"),
            Some("pgoutput"),
            Some("logical"),
            Some("orders"),
            Some("false"),
            None,
            Some("0/5000000"),
            Some("lost"),
            None,
        ];
        let slot = parse_slot(&v15_lost).unwrap();
        assert_eq!(slot.wal_status.as_deref(), Some("lost"));
        assert_eq!((slot.restart_lsn, slot.safe_wal_size), (None, None));
        let v15 = [
            Some("udts_x"),
            Some("test_decoding"),
            Some("logical"),
            Some("postgres"),
            Some("t"),
            Some("0/1000000"),
            Some("0/1800000"),
            Some("reserved"),
            Some("1048576"),
        ];
        let slot = parse_slot(&v15).unwrap();
        assert!(slot.active);
        assert_eq!(slot.safe_wal_size, Some(1_048_576));
        let mut bad = v15;
        bad[6] = Some("zz");
        assert!(parse_slot(&bad)
            .unwrap_err()
            .contains("confirmed_flush_lsn"));
        assert!(parse_slot(&v15[..8]).is_err());
        // In one answer, the odd row is left out with its reason and the good one kept.
        let (slots, skipped) = parse_slots([v15.to_vec(), bad.to_vec()]);
        assert_eq!(slots.len(), 1);
        assert!(slots[0].active);
        assert_eq!(skipped.len(), 1);
        assert!(skipped[0].contains("confirmed_flush_lsn"), "{skipped:?}");
    }
}
