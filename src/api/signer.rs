//! Request signing, exactly as UCloud's gateway checks it.
//!
//! The signature is the lowercase hex SHA-1 of every parameter but `Signature`, sorted by key in
//! plain byte order and concatenated as `key` + `value` with no separators and no URL escaping,
//! followed by the private key. The official test vectors pin this in the tests below.

use std::collections::BTreeMap;

use secrecy::{ExposeSecret, SecretString};
use sha1::{Digest, Sha1};

/// Request parameters by name. A `BTreeMap<String, _>` iterates in byte order, which is the order
/// the gateway sorts by (`CPU` before `ChargeType`, `Backends.10` before `Backends.2`).
pub type Params = BTreeMap<String, String>;

/// Computes the `Signature` parameter for `params` (which must not contain `Signature` itself).
///
/// The first of UCloud's official test vectors:
/// ```
/// use secrecy::SecretString;
/// use udts_exporter::api::signer::{sign, Params};
///
/// let params: Params = [
///     ("Action", "DescribeUHostInstance"),
///     ("Region", "cn-bj2"),
///     ("Limit", "10"),
///     ("PublicKey", "ucloudsomeone@example.com1296235120854146120"),
/// ]
/// .into_iter()
/// .map(|(k, v)| (k.to_string(), v.to_string()))
/// .collect();
/// let private_key = SecretString::from("46f09bb9fab4f12dfc160dae12273d5332b5debe");
/// assert_eq!(sign(&params, &private_key), "cba5cf5ec4d4233d206b1b54951e3787350a642f");
/// ```
pub fn sign(params: &Params, private_key: &SecretString) -> String {
    let mut hasher = Sha1::new();
    for (key, value) in params {
        hasher.update(key.as_bytes());
        hasher.update(value.as_bytes());
    }
    hasher.update(private_key.expose_secret().as_bytes());
    hex::encode(hasher.finalize())
}

/// Formats a float the way the gateway expects: a zero fraction is dropped (`42.0` -> `42`) and
/// scientific notation is never used. Rust's `Display` for `f64` does exactly that.
pub fn format_float(value: f64) -> String {
    format!("{value}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUBLIC_KEY: &str = "ucloudsomeone@example.com1296235120854146120";
    const PRIVATE_KEY: &str = "46f09bb9fab4f12dfc160dae12273d5332b5debe";

    fn params(pairs: &[(&str, &str)]) -> Params {
        let mut params: Params = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        params.insert("PublicKey".into(), PUBLIC_KEY.into());
        params
    }

    fn signature_of(pairs: &[(&str, &str)]) -> String {
        sign(&params(pairs), &SecretString::from(PRIVATE_KEY))
    }

    const CREATE_UHOST: &[(&str, &str)] = &[
        ("Action", "CreateUHostInstance"),
        ("Region", "cn-bj2"),
        ("Zone", "cn-bj2-04"),
        ("ImageId", "f43736e1-65a5-4bea-ad2e-8a46e18883c2"),
        ("CPU", "2"),
        ("Memory", "2048"),
        ("DiskSpace", "10"),
        ("LoginMode", "Password"),
        ("Password", "VUNsb3VkLmNu"),
        ("Name", "Host01"),
        ("ChargeType", "Month"),
        ("Quantity", "1"),
    ];

    #[test]
    fn describe_uhost_vector_matches() {
        assert_eq!(
            signature_of(&[
                ("Action", "DescribeUHostInstance"),
                ("Region", "cn-bj2"),
                ("Limit", "10")
            ]),
            "cba5cf5ec4d4233d206b1b54951e3787350a642f"
        );
    }

    #[test]
    fn create_uhost_vector_sorts_keys_by_byte_order() {
        assert_eq!(
            signature_of(CREATE_UHOST),
            "4f9ef5df2abab2c6fccd1e9515cb7e2df8c6bb65"
        );
    }

    #[test]
    fn security_token_is_signed_like_any_parameter() {
        let mut pairs = CREATE_UHOST.to_vec();
        pairs.push(("SecurityToken", "some_stoken"));
        assert_eq!(
            signature_of(&pairs),
            "170c480ad176a247b324eb92a2cfe536aacfbd04"
        );
    }

    #[test]
    fn flattened_array_keys_sort_as_strings() {
        let values = ["foo", "bar", "42"];
        let keys: Vec<String> = (0..12).map(|i| format!("Backends.{i}")).collect();
        let mut pairs = vec![("Action", "AllocateBackendBatch")];
        for (i, key) in keys.iter().enumerate() {
            pairs.push((key, values[i % 3]));
        }
        assert_eq!(
            signature_of(&pairs),
            "6bc32642779f8cb0bb3d3f128b1c0688abf9a1a3"
        );
    }

    #[test]
    fn float_with_zero_fraction_is_signed_without_it() {
        let proportion = format_float(35.0);
        assert_eq!(proportion, "35");
        assert_eq!(
            signature_of(&[
                ("Action", "DescribeUHostInstance"),
                ("Region", "cn-bj2"),
                ("Proportion", &proportion)
            ]),
            "da620b97de476947302291fc93a2d8b0710be328"
        );
    }

    #[test]
    fn float_with_fraction_is_signed_as_written() {
        let proportion = format_float(65.722);
        assert_eq!(
            signature_of(&[
                ("Action", "DescribeUHostInstance"),
                ("Region", "cn-bj2"),
                ("Proportion", &proportion)
            ]),
            "5e39dd48144d6a075328e56a6c5e9df6c39ae939"
        );
    }

    #[test]
    fn large_floats_never_use_scientific_notation() {
        assert_eq!(format_float(1e21), "1000000000000000000000");
    }
}
