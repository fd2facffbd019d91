//! A PostgreSQL source's answers: LSNs (`X/Y`) and `pg_replication_slots` rows of nine text
//! columns (NULL as absent): never a panic; an LSN the exporter prints parses back to the same
//! position; a parsed row's LSNs are the ones its text says; what a slot is said to retain or lag
//! never exceeds the WAL position.
#![no_main]

use libfuzzer_sys::fuzz_target;
use udts_exporter::source::postgres::{parse_lsn, parse_slot};

fuzz_target!(|data: (u64, Vec<Option<String>>, String)| {
    let (position, columns, text) = data;
    let printed = format!("{:X}/{:X}", position >> 32, position & 0xFFFF_FFFF);
    assert_eq!(parse_lsn(&printed), Some(position), "{printed}");
    if let Some(parsed) = parse_lsn(&text) {
        // Whatever parses is a position the server could have written: printing it parses back.
        let again = format!("{:X}/{:X}", parsed >> 32, parsed & 0xFFFF_FFFF);
        assert_eq!(parse_lsn(&again), Some(parsed), "{text}");
    }
    let columns: Vec<Option<&str>> = columns.iter().map(Option::as_deref).collect();
    if let Ok(slot) = parse_slot(&columns) {
        assert_eq!(columns.len(), 9);
        assert_eq!(Some(slot.name.as_str()), columns[0]);
        assert_eq!(slot.restart_lsn, columns[5].and_then(parse_lsn));
        assert_eq!(slot.confirmed_flush_lsn, columns[6].and_then(parse_lsn));
        for lsn in [slot.restart_lsn, slot.confirmed_flush_lsn].into_iter().flatten() {
            assert!(position.saturating_sub(lsn) <= position);
        }
    }
});
