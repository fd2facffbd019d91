//! Turns the configuration library's errors into messages in the exporter's own terms: the
//! dotted key (or the environment variable) that is wrong, never figment's profile name, with
//! the nearest valid key for a typo and a value that would pass for a unit left out.

use figment::error::{Actual, Kind};

use super::ConfigError;

/// The prefix of the environment variables that configure the exporter.
const ENV_PREFIX: &str = "UDTS_";

/// Where a wrong value came from: the file (by dotted key) or the environment (by variable).
enum Origin {
    File,
    Environment,
}

impl Origin {
    fn of(error: &figment::Error) -> Self {
        match &error.metadata {
            Some(metadata) if metadata.name.contains("environment") => Self::Environment,
            _ => Self::File,
        }
    }

    /// How the user spells `path` where it came from: `api.endpoint` or `UDTS_API__ENDPOINT`.
    fn spell(&self, path: &[String]) -> String {
        match self {
            Self::File => {
                let mut key = String::new();
                for part in path {
                    if part.bytes().all(|b| b.is_ascii_digit()) && !key.is_empty() {
                        key.push_str(&format!("[{part}]"));
                    } else {
                        if !key.is_empty() {
                            key.push('.');
                        }
                        key.push_str(part);
                    }
                }
                key
            }
            Self::Environment => format!("{ENV_PREFIX}{}", path.join("__").to_ascii_uppercase()),
        }
    }

    fn noun(&self) -> &'static str {
        match self {
            Self::File => "config key",
            Self::Environment => "environment variable",
        }
    }
}

/// The message for the first of figment's errors.
pub(super) fn explain(error: figment::Error) -> ConfigError {
    let origin = Origin::of(&error);
    // figment puts the selected profile ("default") in front of paths it reports.
    let mut path: Vec<String> = error.path.clone();
    if path.first().is_some_and(|p| {
        error
            .profile
            .as_ref()
            .is_some_and(|profile| profile.as_str() == p.as_str())
    }) {
        path.remove(0);
    }
    if path.is_empty() {
        // Not about one key: a file that is not TOML, for one.
        let source = error
            .metadata
            .as_ref()
            .and_then(|metadata| metadata.source.as_ref())
            .map(|source| format!("{source}: "))
            .unwrap_or_default();
        return ConfigError::Load(format!("{source}{}", error.kind));
    }
    match &error.kind {
        Kind::UnknownField(field, expected) => {
            let mut key = path.clone();
            if key.last() != Some(field) {
                key.push(field.clone());
            }
            let suggestion = nearest(field, expected).map(|near| {
                let mut near_key = key.clone();
                if let Some(last) = near_key.last_mut() {
                    *last = near.to_string();
                }
                origin.spell(&near_key)
            });
            let fix = match suggestion {
                Some(near) => format!("did you mean {near}?"),
                None if expected.is_empty() => "remove it".to_string(),
                None => format!("the keys here are: {}", expected.join(", ")),
            };
            ConfigError::Unknown {
                what: format!("{} {}", origin.noun(), origin.spell(&key)),
                fix,
            }
        }
        Kind::InvalidValue(Actual::Str(text), expected) if expected.contains("duration") => {
            let number = text.trim().parse::<u64>().ok();
            ConfigError::Invalid {
                key: origin.spell(&path),
                problem: match number {
                    Some(_) => format!("\"{text}\" has no unit"),
                    None => format!("\"{text}\" is not a duration"),
                },
                fix: duration_fix(number),
            }
        }
        Kind::InvalidType(Actual::Unsigned(n), expected) if expected.contains("duration") => {
            ConfigError::Invalid {
                key: origin.spell(&path),
                problem: format!("{n} has no unit"),
                fix: duration_fix(u64::try_from(*n).ok()),
            }
        }
        Kind::InvalidType(Actual::Signed(n), expected) if expected.contains("duration") => {
            ConfigError::Invalid {
                key: origin.spell(&path),
                problem: format!("{n} has no unit"),
                fix: duration_fix(u64::try_from(n.unsigned_abs()).ok()),
            }
        }
        // bytesize's own words ("expected parsable string") do not say what a size looks like.
        Kind::InvalidValue(Actual::Str(text), _)
            if path.last().is_some_and(|k| k == "max_remaining") =>
        {
            ConfigError::Invalid {
                key: origin.spell(&path),
                problem: format!("\"{text}\" is not a size"),
                fix: "write a size with its unit, e.g. \"5MiB\" or \"500 KB\"".into(),
            }
        }
        kind => ConfigError::Invalid {
            key: origin.spell(&path),
            problem: kind.to_string(),
            fix: "see config.example.toml for the expected form".into(),
        },
    }
}

/// The valid name closest to `typo`, if one is close enough to be what was meant.
fn nearest<'a>(typo: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|candidate| (strsim::damerau_levenshtein(typo, candidate), *candidate))
        .filter(|(distance, candidate)| *distance <= (candidate.len() / 3).max(2))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// A fix whose example passes: the user's number in seconds, or a usual interval.
fn duration_fix(number: Option<u64>) -> String {
    let example = match number {
        Some(n) if n > 0 => format!("{n}s"),
        _ => "30s".to_string(),
    };
    format!("write a number with a unit, e.g. \"{example}\" (units: ms, s, m, h, d)")
}
