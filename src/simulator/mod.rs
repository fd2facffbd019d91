//! The embedded simulated UDTS gateway used by `demo` and by the tests: [`gateway`] speaks the
//! API, [`lifecycle`] moves tasks through realistic states, and [`demo_gateway`] populates it.

pub mod credentials;
pub mod gateway;
pub mod lifecycle;
mod monitor;
pub mod postgres;
pub mod source;

pub use credentials::{MetadataServer, TemporaryKeys};
pub use gateway::{Behaviour, Call, Gateway, SimTask};
pub use lifecycle::Lifecycle;

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;

use crate::config::SourceSettings;
use crate::source::{BinlogReader, ReaderFactory};
use crate::task::TaskKind;

/// How long the demo's simulated source (and the MySQL tasks that follow it) had been
/// writing when the demo started.
pub const DEMO_SOURCE_AGE: f64 = 3_600.0;
/// Binlog files the demo's simulated source keeps: twelve minutes.
pub const DEMO_RETAINED_FILES: u64 = 12;

/// Readers for the demo: every configured source is a simulated one (MySQL or PostgreSQL, as
/// its URL says), its epoch `started`.
pub fn demo_readers(started: Instant) -> ReaderFactory {
    Arc::new(move |source: &SourceSettings| match source.kind {
        crate::config::SourceKind::Postgres { .. } => {
            Box::new(postgres::SimulatedPostgres::new(started)) as Box<dyn BinlogReader>
        }
        crate::config::SourceKind::MySql => Box::new(source::SimulatedSource::new(
            started,
            DEMO_SOURCE_AGE,
            DEMO_RETAINED_FILES,
        )) as Box<dyn BinlogReader>,
    })
}

/// The demo's public key; not a real account.
pub const DEMO_PUBLIC_KEY: &str = "demo-public-key";
/// The demo's private key; not a real account's.
pub const DEMO_PRIVATE_KEY: &str = "demo-private-key-8c7e4f2a";

/// A gateway with twenty-five tasks of both kinds in realistic, moving lifecycles: full loads
/// of several sizes, full+incremental and incremental MySQL tasks (five of them on the
/// simulated orders database: one at its head, one catching up that turns ready for cut-over,
/// one falling steadily behind, one falling behind and catching up again, one failed while the
/// source purges its binlog), Redis and Mongo syncs, one task that fails, retries and gives up,
/// one that is stopped and one PostgreSQL task paused for six days whose slot fills its
/// source.
pub fn demo_gateway() -> Gateway {
    use Lifecycle::*;
    let gateway = Gateway::new(DEMO_PUBLIC_KEY, DEMO_PRIVATE_KEY);
    let full = |rows, seconds| Behaviour::Lifecycle(FullLoad { rows, seconds });
    let full_inc = |rows, seconds| Behaviour::Lifecycle(FullThenIncremental { rows, seconds });
    let tasks = [
        SimTask::new("udts-demo-orders", full(2_400_000, 120.0)),
        SimTask::new("udts-demo-users", full(350_000, 45.0)),
        SimTask::new("udts-demo-logs", full(12_000_000, 300.0)).started_ago(60.0),
        SimTask::new("udts-demo-audit", full(80_000, 20.0)).started_ago(20.0),
        SimTask::new("udts-demo-payments", full_inc(900_000, 60.0)).mode("full+incremental"),
        SimTask::new("udts-demo-inventory", full_inc(1_500_000, 90.0))
            .mode("full+incremental")
            .started_ago(30.0),
        SimTask::new("udts-demo-crm", full_inc(200_000, 30.0))
            .mode("full+incremental")
            .started_ago(200.0),
        SimTask::new("udts-demo-billing", Behaviour::Lifecycle(MysqlIncremental))
            .mode("incremental")
            .started_ago(DEMO_SOURCE_AGE),
        // Reads the simulated orders database: falls behind and catches up.
        SimTask::new(
            "udts-demo-orders-cdc",
            Behaviour::Lifecycle(MysqlFallsBehind),
        )
        .mode("incremental")
        .started_ago(DEMO_SOURCE_AGE),
        // Ninety seconds behind, applying twice as fast as the source writes: at the head after
        // a minute and a half, ready for cut-over a minute later.
        SimTask::new(
            "udts-demo-orders-sync",
            Behaviour::Lifecycle(MysqlAtSpeed {
                from: DEMO_SOURCE_AGE,
                behind: 90.0,
                speed: 2.0,
            }),
        )
        .mode("incremental")
        .started_ago(DEMO_SOURCE_AGE),
        // Applying at 60% of the source's write rate: falls further behind the whole demo.
        SimTask::new(
            "udts-demo-orders-replay",
            Behaviour::Lifecycle(MysqlAtSpeed {
                from: DEMO_SOURCE_AGE,
                behind: 30.0,
                speed: 0.6,
            }),
        )
        .mode("incremental")
        .started_ago(DEMO_SOURCE_AGE),
        // Failed eight and a half minutes of binlog ago: its file becomes the oldest on the
        // source three minutes into the demo and is purged a minute later.
        SimTask::new(
            "udts-demo-orders-retry",
            Behaviour::Lifecycle(FailedHoldingBinlog {
                stuck_at: DEMO_SOURCE_AGE - 510.0,
            }),
        )
        .mode("incremental")
        .started_ago(DEMO_SOURCE_AGE),
        SimTask::new("udts-demo-ledger", Behaviour::Lifecycle(MysqlIncremental))
            .mode("incremental")
            .started_ago(100.0),
        SimTask::new("udts-demo-shipping", Behaviour::Lifecycle(MysqlIncremental))
            .mode("incremental"),
        SimTask::new("udts-demo-sessions", Behaviour::Lifecycle(RedisIncremental))
            .mode("incremental"),
        SimTask::new("udts-demo-cache", Behaviour::Lifecycle(RedisIncremental))
            .mode("incremental")
            .started_ago(40.0),
        SimTask::new("udts-demo-catalog", Behaviour::Lifecycle(MongoIncremental))
            .mode("incremental"),
        SimTask::new("udts-demo-events", Behaviour::Lifecycle(MongoIncremental))
            .mode("incremental")
            .started_ago(25.0),
        // Three failed attempts already behind it: it gives up about 20 s into the demo.
        SimTask::new(
            "udts-demo-legacy",
            Behaviour::Lifecycle(FailsAndGivesUp { max_retries: 3 }),
        )
        .started_ago(50.0),
        // A PostgreSQL task paused six days and two hours ago (its history says so): UDTS can
        // resume it for 22 hours more, and its slot on the simulated PostgreSQL source has
        // retained the WAL written since.
        SimTask::new(
            "udts-demo-paused",
            Behaviour::Fixed(json!({"Status": "Stopped", "CurRetryCount": 0, "MaxRetryCount": 3})),
        )
        .mode("incremental")
        .started_ago(postgres::PAUSED_FOR),
        // Its billing runs out in three days: the expiry alert has something to say.
        SimTask::new("udts-demo-archive", Behaviour::Lifecycle(Stops))
            .mode("incremental")
            .expiring_in_days(3.0),
        SimTask::new("udts-demo-warehouse", full_inc(5_000_000, 150.0))
            .kind(TaskKind::Integration)
            .mode("full+incremental"),
        SimTask::new(
            "udts-demo-analytics",
            Behaviour::Lifecycle(MysqlIncremental),
        )
        .kind(TaskKind::Integration)
        .mode("incremental"),
        SimTask::new("udts-demo-reporting", full(700_000, 75.0)).kind(TaskKind::Integration),
        SimTask::new("udts-demo-replica", Behaviour::Lifecycle(MysqlIncremental))
            .kind(TaskKind::Integration)
            .mode("bidirectional")
            .started_ago(500.0),
    ];
    for task in tasks {
        gateway.add_task(task);
    }
    gateway
}
