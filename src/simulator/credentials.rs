//! Temporary credentials as UCloud issues and checks them: STS `AssumeRole` on the gateway, an
//! instance metadata server (v2 and v1 paths, and the region), and the gateway's check of a
//! temporary key: its `SecurityToken` must come with it, signed, before it expires (else
//! RetCode 174). The lifetime is the test's to set, so refreshes happen within seconds.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use secrecy::SecretString;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::api::signer::{sign, Params};
use crate::time::unix_now;

/// A JSON body, as the gateway and the metadata server send it.
fn json_response(value: Value) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A temporary key the simulator issued.
struct Issued {
    secret: String,
    token: String,
    expires: f64,
}

/// Every temporary key issued, shared by the gateway (which checks them) and the metadata
/// server (which hands them out).
pub struct TemporaryKeys {
    issued: Mutex<HashMap<String, Issued>>,
    next: AtomicU64,
    /// How long an issued key lasts, whatever was asked.
    lifetime: Mutex<Duration>,
    /// Every fetch (AssumeRole or metadata) so far.
    fetches: AtomicU64,
}

impl Default for TemporaryKeys {
    fn default() -> Self {
        Self {
            issued: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
            lifetime: Mutex::new(Duration::from_secs(3600)),
            fetches: AtomicU64::new(0),
        }
    }
}

impl TemporaryKeys {
    /// Keys issued from now on last `lifetime`.
    pub fn set_lifetime(&self, lifetime: Duration) {
        *lock(&self.lifetime) = lifetime;
    }

    /// Fetches of temporary keys so far (AssumeRole and the metadata server together).
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// Forgets every key issued so far: their next call gets 174 (a revoked session).
    pub fn revoke_all(&self) {
        lock(&self.issued).clear();
    }

    /// Issues a key: (AccessKeyId, AccessKeySecret, SecurityToken, expiry in unix seconds).
    fn issue(&self) -> (String, String, String, f64) {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let id = format!("TMP-AKID-{n}");
        let secret = format!("tmp-secret-{n}-{:x}", n.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let token = format!("tmp-token-{n}-{:x}", n.wrapping_mul(0xc2b2_ae3d_27d4_eb4f));
        let expires = unix_now() + lock(&self.lifetime).as_secs_f64();
        let mut issued = lock(&self.issued);
        let now = unix_now();
        issued.retain(|_, key| key.expires > now - 60.0);
        issued.insert(
            id.clone(),
            Issued {
                secret: secret.clone(),
                token: token.clone(),
                expires,
            },
        );
        (id, secret, token, expires)
    }

    /// The gateway's check of a request signed with a temporary key: `None` when `PublicKey`
    /// is not one (a long-lived key, checked as before), else what to answer.
    pub(super) fn verify(
        &self,
        params: &Params,
        signature: &str,
    ) -> Option<Result<(), (i64, String)>> {
        let id = params.get("PublicKey")?;
        if !id.starts_with("TMP-AKID-") {
            return None;
        }
        let issued = lock(&self.issued);
        let Some(key) = issued.get(id) else {
            return Some(Err((174, "Token not exist".into())));
        };
        if params.get("SecurityToken") != Some(&key.token) {
            return Some(Err((174, "Token not exist".into())));
        }
        if key.expires <= unix_now() {
            return Some(Err((174, "Token expired".into())));
        }
        if sign(params, &SecretString::from(key.secret.clone())) != signature {
            return Some(Err((171, "Signature VerifyAC Error".into())));
        }
        Some(Ok(()))
    }

    /// `AssumeRole`'s answer (its caller already verified): the keys at the top level under
    /// `Credentials`, as STS puts them.
    pub(super) fn assume_role(&self, params: &Params) -> Response {
        let urn = params.get("RoleUrn").map(String::as_str).unwrap_or("");
        if !urn.starts_with("ucs:iam::") {
            return json_response(json!({"Action": "AssumeRoleResponse", "RetCode": 230,
                "Message": "Params [RoleUrn] not valid"}))
            .into_response();
        }
        let (id, secret, token, expires) = self.issue();
        json_response(json!({
            "Action": "AssumeRoleResponse",
            "RetCode": 0,
            "Credentials": {
                "AccessKeyId": id,
                "AccessKeySecret": secret,
                "SecurityToken": token,
                "Expiration": humantime::format_rfc3339_seconds(
                    std::time::UNIX_EPOCH + Duration::from_secs_f64(expires)
                ).to_string(),
            }
        }))
        .into_response()
    }
}

/// A simulated instance metadata server: `GET /meta-data/v2/iam/security-credentials/ROLE`
/// (unless v2 is off), `GET /meta-data/v1/uam/security-credentials/ROLE` and
/// `GET /meta-data/latest/region`. It can be made to fail (HTTP 500) to model an outage.
#[derive(Clone)]
pub struct MetadataServer {
    keys: Arc<TemporaryKeys>,
    role: String,
    region: String,
    v2: Arc<AtomicBool>,
    down: Arc<AtomicBool>,
    /// What the v2 path answers instead of keys, when set (a malformed answer).
    v2_body: Arc<Mutex<Option<String>>>,
}

impl MetadataServer {
    /// A server handing out `keys` for `role`, in `region`.
    pub fn new(keys: Arc<TemporaryKeys>, role: &str, region: &str) -> Self {
        Self {
            keys,
            role: role.into(),
            region: region.into(),
            v2: Arc::new(AtomicBool::new(true)),
            down: Arc::new(AtomicBool::new(false)),
            v2_body: Arc::default(),
        }
    }

    /// Serves the v2 path (`true`, the default) or answers it 404 as an older host does.
    pub fn set_v2(&self, served: bool) {
        self.v2.store(served, Ordering::Relaxed);
    }

    /// Answers every request 500 while `down`.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::Relaxed);
    }

    /// Makes the v2 path answer `body` (HTTP 200) instead of keys, or keys again with `None`.
    pub fn set_v2_body(&self, body: Option<String>) {
        *lock(&self.v2_body) = body;
    }

    /// Serves on an ephemeral loopback port until `shutdown`; returns its base URL.
    pub async fn start_on_loopback(self, shutdown: CancellationToken) -> std::io::Result<String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let app = Router::new()
            .route("/meta-data/v2/iam/security-credentials/{role}", get(v2))
            .route("/meta-data/v1/uam/security-credentials/{role}", get(v1))
            .route("/meta-data/latest/region", get(region))
            .with_state(self);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await;
        });
        Ok(url)
    }

    fn refuse(&self, role: &str) -> Option<Response> {
        if self.down.load(Ordering::Relaxed) {
            return Some(
                (StatusCode::INTERNAL_SERVER_ERROR, "metadata unavailable").into_response(),
            );
        }
        (role != self.role).then(|| (StatusCode::NOT_FOUND, "no such role").into_response())
    }
}

async fn v2(
    State(server): State<MetadataServer>,
    Path(role): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !server.v2.load(Ordering::Relaxed) {
        return (StatusCode::NOT_FOUND, "404 page not found").into_response();
    }
    if let Some(refused) = server.refuse(&role) {
        return refused;
    }
    if let Some(body) = lock(&server.v2_body).clone() {
        return body.into_response();
    }
    let asked = headers
        .get("Duration-Seconds")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if asked.is_some_and(|s| !(900..=3600).contains(&s)) {
        return json_response(json!({"RetCode": 230, "Message": "Duration-Seconds not valid"}))
            .into_response();
    }
    let (id, secret, token, expires) = server.keys.issue();
    json_response(json!({"RetCode": 0, "Message": "", "Data": {
        "AccessKeyId": id, "AccessKeySecret": secret, "SecurityToken": token,
        "Expiration": humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + Duration::from_secs_f64(expires)).to_string(),
        "CharacterName": role, "ProjectID": "org-sim", "UHostID": "uhost-sim"}}))
    .into_response()
}

async fn v1(State(server): State<MetadataServer>, Path(role): Path<String>) -> Response {
    if let Some(refused) = server.refuse(&role) {
        return refused;
    }
    let (id, secret, token, expires) = server.keys.issue();
    let body: Value = json!({"RetCode": 0, "Message": "", "Data": {
        "PublicKey": id, "PrivateKey": secret, "SecurityToken": token,
        "Expiration": expires as i64, "CharacterName": role, "ProjectID": "org-sim"}});
    json_response(body).into_response()
}

async fn region(State(server): State<MetadataServer>) -> Response {
    if server.down.load(Ordering::Relaxed) {
        return (StatusCode::INTERNAL_SERVER_ERROR, "metadata unavailable").into_response();
    }
    server.region.clone().into_response()
}
