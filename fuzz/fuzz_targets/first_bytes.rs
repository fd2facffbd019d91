//! The first bytes of a connection, as the waiting room at `web.max_connections` peeks them:
//! never a panic, and once they hold a whole request head or TLS record, more bytes never take
//! that back (the peek sees a growing prefix of the same stream).
#![no_main]

use libfuzzer_sys::fuzz_target;
use udts_exporter::listen::admission::whole_request;

fuzz_target!(|bytes: &[u8]| {
    let whole = whole_request(bytes);
    for cut in 0..bytes.len() {
        if whole_request(&bytes[..cut]) {
            assert!(whole, "a whole prefix of {bytes:?} became partial");
            break;
        }
    }
});
