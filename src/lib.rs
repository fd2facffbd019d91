//! udts-exporter: a Prometheus exporter for UCloud UDTS (Data Transmission Service) tasks.
//!
//! Data flows one way, and so do the imports (`tests/layout.rs` checks it):
//! [`config`] -> [`runtime`] -> [`api`] -> [`poller`] / [`discovery`] -> [`state`] ->
//! [`exposition`] -> [`server`], wired together by [`exporter`].
//! - [`config`] loads and validates the TOML file and `UDTS_` environment.
//! - [`runtime`] holds the settings and per-account clients, swapped whole on reload.
//! - [`api`] signs requests ([`api::signer`]), sends them ([`api::client`]), parses answers
//!   leniently ([`api::model`]) and classifies failures ([`api::error`]); it reports calls to a
//!   [`api::CallObserver`], which the exporter's own [`metrics`] implement.
//! - [`discovery`] finds tasks with `ListUDTSTask` and merges them with the configured ones.
//! - [`poller`] polls every task in the background and records results in the [`state`] store,
//!   one immutable task state at a time.
//! - [`exposition`] encodes the store and the exporter's own [`metrics`] into the `/metrics`
//!   payload whenever the state changes; [`server`] serves the latest payload and never calls
//!   the API. [`web_config`] adds TLS and basic auth to the endpoints (exporter-toolkit format).
//! - [`source`] reads each `[[sources]]` database's binlog or WAL state on its own loop;
//!   [`slots`] is the PostgreSQL slot policy; [`derive`] derives, once per render, every
//!   fact the exposition, the views and `check` read (slots, lags, outlooks, deadlines).
//! - [`exporter`] wires these together and applies reloads; [`cli`] is the binary (run, `demo`,
//!   `check`, `discover`), and [`simulator`] is the embedded gateway `demo`, the tests and the
//!   benchmarks poll. [`time`], [`limits`], [`task`], [`status`] and
//!   [`tls_provider`] (the process's one TLS crypto provider) are leaves.

pub mod api;
pub mod cadence;
pub mod check;
pub mod cli;
pub mod config;
pub mod deadlines;
pub mod derive;
pub mod discovery;
pub mod exporter;
pub mod exposition;
pub mod human;
pub mod limits;
pub mod listen;
pub mod logging;
pub mod metrics;
pub mod monitor;
pub mod outlook;
pub mod page;
pub mod poller;
pub mod process_metrics;
pub mod runtime;
pub mod server;
pub mod simulator;
pub mod slots;
pub mod source;
pub mod state;
pub mod status;
pub mod task;
pub mod task_view;
pub mod time;
pub mod tls_provider;
pub mod wait;
pub mod web_config;
