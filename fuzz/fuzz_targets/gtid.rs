//! GTID sets from the source and the task, MySQL (`uuid:1-5:7`, tagged, upper case) and
//! MariaDB (`domain-server-seq`): never a panic; what is printed parses back to the same set; a
//! set lacks nothing of itself; what one set lacks of another never exceeds the whole of it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use udts_exporter::source::gtid::Gtids;

fuzz_target!(|text: &str| {
    let (source, task) = text.split_once('|').unwrap_or((text, ""));
    let Ok(executed) = Gtids::parse(source) else {
        return;
    };
    // Printing and parsing back gives the same set (an empty MariaDB set prints as the empty
    // text, which is the empty MySQL set: both lack nothing).
    let printed = executed.to_string();
    if !printed.is_empty() {
        let again = Gtids::parse(&printed).unwrap_or_else(|e| panic!("{printed}: {e}"));
        assert_eq!(again, executed, "{source} printed as {printed}");
    }
    if let Some(missing) = executed.missing_from(&executed) {
        assert_eq!(missing, 0, "{source} lacks {missing} of itself");
    }
    let Ok(held) = Gtids::parse(task) else {
        return;
    };
    let missing = executed.missing_from(&held);
    // The whole set, as what an empty set of the same flavour lacks.
    let empty = match &executed {
        Gtids::MySql(_) => Gtids::MySql(Default::default()),
        Gtids::MariaDb(_) => Gtids::MariaDb(Default::default()),
    };
    if let Some(missing) = missing {
        if let Some(whole) = executed.missing_from(&empty) {
            assert!(missing <= whole, "{source} | {task}: {missing} > {whole}");
        }
    }
});
