//! Log output: text for people, JSON for log pipelines. The level comes from `--log-level`,
//! else `RUST_LOG`, else `info`. Text is coloured only on a terminal, and never with `NO_COLOR`
//! set (<https://no-color.org>): journald, `kubectl logs` and files get plain lines.

use std::io::IsTerminal as _;

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

/// `--log-format`
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The levels a bare directive may name, as tracing spells them.
const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

/// Installs the global subscriber; logs go to stderr so stdout stays for command output.
pub fn init(format: LogFormat, level: Option<&str>) -> anyhow::Result<()> {
    let filter = match level {
        Some(level) => parse_filter(level).map_err(|e| anyhow::anyhow!("--log-level: {e}"))?,
        None => match std::env::var("RUST_LOG") {
            Ok(spec) if !spec.trim().is_empty() => {
                parse_filter(&spec).map_err(|e| anyhow::anyhow!("RUST_LOG: {e}"))?
            }
            _ => EnvFilter::new("info"),
        },
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour_wanted());
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))
}

/// Parses a level or a list of tracing filter directives (`info,udts_exporter::poller=debug`).
///
/// tracing reads a bare word it does not know as a *target* with no level, so `warning` or
/// `verbose` would silently mean "log nothing but that module". Here a bare word must be a
/// level (`warning` is taken as `warn`, as syslog spells it); a module is filtered with
/// `target=level`.
pub fn parse_filter(spec: &str) -> Result<EnvFilter, String> {
    let mut directives = Vec::new();
    for directive in spec.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let directive = match directive.rsplit_once('=') {
            Some((target, level)) => format!("{target}={}", level_word(level)?),
            None if directive.contains('[') => directive.to_string(),
            None => level_word(directive)?,
        };
        directives.push(directive);
    }
    if directives.is_empty() {
        return Err(format!("no level given; use one of {}", LEVELS.join(", ")));
    }
    EnvFilter::builder()
        .parse(directives.join(","))
        .map_err(|e| format!("{e}; use one of {} or target=level", LEVELS.join(", ")))
}

/// A level as tracing spells it, or why the word is not one.
fn level_word(word: &str) -> Result<String, String> {
    let lower = word.trim().to_ascii_lowercase();
    let lower = if lower == "warning" {
        "warn".to_string()
    } else {
        lower
    };
    if LEVELS.contains(&lower.as_str()) {
        Ok(lower)
    } else {
        Err(format!(
            "`{word}` is not a log level; use one of {} (or target=level, e.g. udts_exporter::poller=debug)",
            LEVELS.join(", ")
        ))
    }
}

/// Whether text logs may carry colour escapes: stderr is a terminal and `NO_COLOR` is unset or
/// empty.
fn colour_wanted() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warning_is_taken_as_warn_and_unknown_words_are_refused() {
        assert_eq!(parse_filter("warning").unwrap().to_string(), "warn");
        assert_eq!(parse_filter("WARN").unwrap().to_string(), "warn");
        let error = parse_filter("verbose").unwrap_err();
        assert!(error.contains("`verbose` is not a log level"), "{error}");
        assert!(
            error.contains("trace, debug, info, warn, error, off"),
            "{error}"
        );
        assert!(parse_filter("").is_err());
    }

    #[test]
    fn target_directives_keep_working() {
        let filter = parse_filter("info, udts_exporter::poller=Warning").unwrap();
        let text = filter.to_string();
        assert!(text.contains("udts_exporter::poller=warn"), "{text}");
        assert!(text.contains("info"), "{text}");
        assert!(parse_filter("udts_exporter=loud").is_err());
    }
}
