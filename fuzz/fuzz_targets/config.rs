//! The operator's TOML, read and validated by the exporter's own loader: either a clean error
//! that says which key, or a configuration that resolves; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use udts_exporter::config::Config;

fuzz_target!(|text: &str| {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).expect("written");
    match Config::load(Some(&path)).and_then(|config| config.resolve().map(|_| ())) {
        Ok(()) => {}
        Err(error) => {
            let said = error.to_string();
            assert!(!said.is_empty());
            assert!(said.contains("config"), "no key or file named: {said}");
        }
    }
});
