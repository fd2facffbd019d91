//! An exporter-toolkit web config (YAML), loaded by the exporter's own loader: a clean error
//! naming the file, or a configuration; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use udts_exporter::web_config::WebSecurity;

fuzz_target!(|text: &str| {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("web.yml");
    std::fs::write(&path, text).expect("written");
    if let Err(error) = WebSecurity::load(&path) {
        let said = error.to_string();
        assert!(said.contains("web.yml"), "the file is not named: {said}");
    }
});
