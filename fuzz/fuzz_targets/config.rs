//! The operator's TOML and `UDTS_` environment, read and validated by the exporter's own
//! loader: either a clean error that says which key, or a configuration that resolves; never a
//! panic. Input: the TOML, then after a NUL byte `NAME=value` lines, each set as `UDTS_NAME`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use udts_exporter::config::Config;

fuzz_target!(|text: &str| {
    let (toml, environment) = text.split_once('\0').unwrap_or((text, ""));
    let variables: Vec<(String, String)> = environment
        .lines()
        .filter_map(|line| line.split_once('='))
        .filter(|(name, value)| {
            !name.is_empty() && !name.contains(['=', '\0']) && !value.contains('\0')
        })
        .map(|(name, value)| (format!("UDTS_{name}"), value.to_string()))
        .collect();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("config.toml");
    std::fs::write(&path, toml).expect("written");
    // One target process, one input at a time: the variables are this input's alone.
    for (name, value) in &variables {
        std::env::set_var(name, value);
    }
    let outcome = Config::load(Some(&path)).and_then(|config| config.resolve().map(|_| ()));
    for (name, _) in &variables {
        std::env::remove_var(name);
    }
    if let Err(error) = outcome {
        let said = error.to_string();
        assert!(!said.is_empty());
        // It names where to look: a key, the file, or the variable.
        assert!(
            said.contains("config") || said.contains("UDTS_"),
            "nothing named: {said}"
        );
    }
});
