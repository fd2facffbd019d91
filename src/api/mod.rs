//! Talking to a UCloud-compatible gateway: signing ([`signer`]), the response models
//! ([`model`]) and their decoding ([`decode`]), failures ([`error`]) and the HTTP client
//! ([`client`]).

pub mod client;
pub mod credentials;
pub mod decode;
pub mod error;
pub mod model;
pub mod monitor;
pub mod signer;

pub use client::{CallObserver, Client, ClientSettings};
pub use credentials::{AssumeRole, CredentialSource, Credentials};
pub use error::{ApiError, ERROR_REASONS};
pub use model::{HistoryItem, ListItem, StatusData};
