//! Fetching temporary keys: an instance role's from the metadata server (v2, else v1, and the
//! host's region) and a role's from STS `AssumeRole`. Every answer is bounded in size (and in
//! time, by the client's timeout) and checked before it is used: a missing field, an unreadable
//! or past expiry refuse it, naming what was wrong and never echoing the body.

use secrecy::SecretString;
use serde_json::Value;
use url::Url;

use super::{AssumeRole, CredentialError, CredentialSource, Credentials};
use crate::api::signer::Params;
use crate::time::unix_now;

/// What one fetch brought: the keys, and what the source said besides.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The keys.
    pub credentials: Credentials,
    /// How they were had, for the log: "metadata v2", "metadata v1", "AssumeRole".
    pub via: &'static str,
    /// The region the metadata server reports, when it was asked.
    pub region: Option<String>,
}

/// What a fetch needs: an HTTP client, the gateway for STS, and the bounds of an answer.
#[derive(Clone)]
pub struct Fetcher {
    /// The account's HTTP client (its timeout bounds every request).
    pub http: reqwest::Client,
    /// The gateway `AssumeRole` is sent to.
    pub endpoint: Url,
    /// Larger answers are refused.
    pub max_response_bytes: usize,
}

impl Fetcher {
    /// Fetches `source`'s keys once.
    pub async fn fetch(&self, source: &CredentialSource) -> Result<Fetched, CredentialError> {
        match source {
            CredentialSource::Keys { keys, .. } => Ok(Fetched {
                credentials: keys.clone(),
                via: "keys",
                region: None,
            }),
            CredentialSource::InstanceRole { role, metadata } => {
                self.instance_role(metadata, role).await
            }
            CredentialSource::AssumeRole { base, role } => {
                let base = Box::pin(self.fetch(base)).await?;
                let credentials = self.assume_role(&base.credentials, role).await?;
                Ok(Fetched {
                    credentials,
                    via: "AssumeRole",
                    region: base.region,
                })
            }
        }
    }

    /// The instance role's keys: the v2 path first, v1 where v2 is not served; and the region.
    async fn instance_role(&self, metadata: &Url, role: &str) -> Result<Fetched, CredentialError> {
        let v2 = join(
            metadata,
            &format!("meta-data/v2/iam/security-credentials/{role}"),
        )?;
        let answer = self
            .get(
                v2,
                &[
                    ("Duration-Seconds", "3600"),
                    ("Session-Name", "udts-exporter"),
                ],
            )
            .await?;
        let (credentials, via) = match answer {
            Some(body) => (
                parse_metadata(&body, "AccessKeyId", "AccessKeySecret", "metadata v2")?,
                "metadata v2",
            ),
            None => {
                let v1 = join(
                    metadata,
                    &format!("meta-data/v1/uam/security-credentials/{role}"),
                )?;
                let body = self.get(v1, &[]).await?.ok_or_else(|| {
                    CredentialError(format!(
                        "the metadata server at {metadata} serves neither v2 nor v1 credentials \
                         for role {role}: check instance_role names the role bound to this host"
                    ))
                })?;
                (
                    parse_metadata(&body, "PublicKey", "PrivateKey", "metadata v1")?,
                    "metadata v1",
                )
            }
        };
        let region = match self
            .get(join(metadata, "meta-data/latest/region")?, &[])
            .await
        {
            Ok(Some(body)) => String::from_utf8(body)
                .ok()
                .map(|r| r.trim().to_string())
                .filter(|r| !r.is_empty() && r.len() <= 64 && !r.contains(char::is_whitespace)),
            _ => None,
        };
        Ok(Fetched {
            credentials,
            via,
            region,
        })
    }

    /// `AssumeRole`, signed with `base`.
    async fn assume_role(
        &self,
        base: &Credentials,
        role: &AssumeRole,
    ) -> Result<Credentials, CredentialError> {
        let mut params = Params::new();
        params.insert("Action".into(), "AssumeRole".into());
        params.insert("RoleUrn".into(), role.role_urn.clone());
        params.insert("RoleSessionName".into(), role.session_name.clone());
        params.insert(
            "DurationSeconds".into(),
            role.duration.as_secs().to_string(),
        );
        if let Some(policy) = &role.policy {
            params.insert("Policy".into(), policy.clone());
        }
        base.sign_into(&mut params);
        let endpoint = origin(&self.endpoint);
        let response = self
            .http
            .post(self.endpoint.clone())
            .form(&params)
            .send()
            .await
            .map_err(|e| CredentialError(format!("AssumeRole at {endpoint}: {}", cause(e))))?;
        let status = response.status();
        let body = self.bounded(response, "AssumeRole").await?;
        if !status.is_success() {
            return Err(CredentialError(format!(
                "AssumeRole at {endpoint}: HTTP status {}",
                status.as_u16()
            )));
        }
        let value: Value = serde_json::from_slice(&body).map_err(|_| {
            CredentialError(format!("AssumeRole at {endpoint}: the answer is not JSON"))
        })?;
        let code = value.get("RetCode").and_then(number).unwrap_or(-1.0);
        if code != 0.0 {
            let message = value.get("Message").and_then(Value::as_str).unwrap_or("");
            let message: String = message.chars().take(200).collect();
            return Err(CredentialError(format!(
                "AssumeRole for {} refused: RetCode {code}: {message} (the signing keys need \
                 IAM's STSCreateOnlyAccess, and the role must trust them)",
                role.role_urn
            )));
        }
        let fields = value
            .get("Credentials")
            .ok_or_else(|| CredentialError("AssumeRole answered without Credentials".into()))?;
        temporary(fields, "AccessKeyId", "AccessKeySecret", "AssumeRole")
    }

    /// GET `url` from the metadata server: its body, or `None` when the path is not served
    /// (404, 405 or 501).
    async fn get(
        &self,
        url: Url,
        headers: &[(&str, &str)],
    ) -> Result<Option<Vec<u8>>, CredentialError> {
        let where_ = origin(&url);
        let mut request = self.http.get(url.clone());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request
            .send()
            .await
            .map_err(|e| CredentialError(format!("metadata server at {where_}: {}", cause(e))))?;
        let status = response.status().as_u16();
        if matches!(status, 404 | 405 | 501) {
            return Ok(None);
        }
        if !(200..300).contains(&status) {
            return Err(CredentialError(format!(
                "metadata server at {where_}: HTTP status {status} for {}",
                url.path()
            )));
        }
        self.bounded(response, "the metadata server")
            .await
            .map(Some)
    }

    /// The body, refused past `max_response_bytes`.
    async fn bounded(
        &self,
        mut response: reqwest::Response,
        what: &str,
    ) -> Result<Vec<u8>, CredentialError> {
        let limit = self.max_response_bytes;
        let too_large = || CredentialError(format!("{what} answered more than {limit} bytes"));
        if response.content_length().is_some_and(|n| n > limit as u64) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| CredentialError(format!("{what}: {}", cause(e))))?
        {
            if body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// `path` under the metadata server's base URL.
fn join(base: &Url, path: &str) -> Result<Url, CredentialError> {
    base.join(path)
        .map_err(|e| CredentialError(format!("metadata_endpoint {base}: {e}")))
}

/// `scheme://host:port` of `url`: where, never what was asked.
fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// A reqwest error's cause without its URL.
fn cause(error: reqwest::Error) -> String {
    if error.is_timeout() {
        return "no answer within api.timeout".into();
    }
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(inner) = source {
        text = format!("{text}: {inner}");
        source = inner.source();
    }
    text
}

fn number(value: &Value) -> Option<f64> {
    value
        .as_f64()
        .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
}

/// A metadata answer's `Data`, checked.
fn parse_metadata(
    body: &[u8],
    id: &str,
    secret: &str,
    what: &str,
) -> Result<Credentials, CredentialError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| CredentialError(format!("{what}: the answer is not JSON")))?;
    if let Some(code) = value.get("RetCode").and_then(number).filter(|c| *c != 0.0) {
        return Err(CredentialError(format!("{what}: RetCode {code}")));
    }
    let data = value
        .get("Data")
        .ok_or_else(|| CredentialError(format!("{what}: the answer has no Data")))?;
    temporary(data, id, secret, what)
}

/// Temporary keys from `fields`, refused when a field is missing or empty, the expiry cannot
/// be read, or they have already expired.
fn temporary(
    fields: &Value,
    id: &str,
    secret: &str,
    what: &str,
) -> Result<Credentials, CredentialError> {
    let text = |key: &str| {
        fields
            .get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .ok_or_else(|| CredentialError(format!("{what}: the answer lacks {key}")))
    };
    let public_key = text(id)?;
    let private_key = SecretString::from(text(secret)?);
    let token = SecretString::from(text("SecurityToken")?);
    let expires = match fields.get("Expiration") {
        Some(Value::String(at)) => humantime::parse_rfc3339_weak(at.trim())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs_f64())
            .or_else(|| at.trim().parse::<f64>().ok()),
        Some(other) => number(other),
        None => None,
    }
    .filter(|at| at.is_finite())
    .ok_or_else(|| CredentialError(format!("{what}: Expiration is missing or unreadable")))?;
    if expires <= unix_now() {
        return Err(CredentialError(format!(
            "{what}: the credentials it gave have already expired"
        )));
    }
    Ok(Credentials {
        public_key,
        private_key,
        security_token: Some(token),
        expires: Some(expires),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_or_expired_answer_is_refused_by_name() {
        let v2 = |data: Value| {
            serde_json::to_vec(&serde_json::json!({"RetCode": 0, "Data": data})).unwrap()
        };
        let good = serde_json::json!({"AccessKeyId": "AK", "AccessKeySecret": "S",
            "SecurityToken": "T", "Expiration": "2999-01-01T00:00:00Z"});
        let ok = parse_metadata(&v2(good.clone()), "AccessKeyId", "AccessKeySecret", "v2").unwrap();
        assert_eq!(ok.public_key, "AK");
        assert!(ok.expires.unwrap() > unix_now());
        let mut lacking = good.clone();
        lacking["SecurityToken"] = Value::String(String::new());
        let error =
            parse_metadata(&v2(lacking), "AccessKeyId", "AccessKeySecret", "v2").unwrap_err();
        assert!(error.0.contains("lacks SecurityToken"), "{error}");
        let mut expired = good.clone();
        expired["Expiration"] = Value::String("2001-01-01T00:00:00Z".into());
        let error =
            parse_metadata(&v2(expired), "AccessKeyId", "AccessKeySecret", "v2").unwrap_err();
        assert!(error.0.contains("already expired"), "{error}");
        let mut unreadable = good;
        unreadable["Expiration"] = Value::String("soon".into());
        let error =
            parse_metadata(&v2(unreadable), "AccessKeyId", "AccessKeySecret", "v2").unwrap_err();
        assert!(error.0.contains("Expiration"), "{error}");
        assert!(parse_metadata(b"<html>", "a", "b", "v1")
            .unwrap_err()
            .0
            .contains("not JSON"));
        // v1 says when in unix seconds.
        let v1 = serde_json::json!({"PublicKey": "AK", "PrivateKey": "S", "SecurityToken": "T",
            "Expiration": 32_503_680_000_i64});
        let ok = parse_metadata(&v2(v1), "PublicKey", "PrivateKey", "v1").unwrap();
        assert_eq!(ok.expires, Some(32_503_680_000.0));
    }
}
