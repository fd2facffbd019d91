//! GTID arithmetic: how many transactions the source has executed that a task's `BinlogGTID`
//! does not contain, for MySQL GTID sets (`uuid[:tag]:1-100:200-300,...`) and MariaDB GTID
//! positions (`domain-server-seq,...`).

use std::collections::BTreeMap;

/// MySQL GTIDs: per server uuid (lowercase) and tag, sorted disjoint inclusive intervals.
pub type MySqlSet = BTreeMap<(String, String), Vec<(u64, u64)>>;

/// A parsed GTID text of either server family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gtids {
    /// MySQL: per server uuid (lowercase) and tag, sorted disjoint inclusive intervals.
    MySql(MySqlSet),
    /// MariaDB: per replication domain, the last sequence number.
    MariaDb(BTreeMap<u32, u64>),
}

/// A GTID text that is neither form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed GTID text near `{0}`")]
pub struct MalformedGtid(pub String);

impl Gtids {
    /// Parses either form; an empty text is an empty MySQL set. Whitespace and newlines after
    /// commas (as `@@gtid_executed` prints them) are ignored.
    pub fn parse(text: &str) -> Result<Self, MalformedGtid> {
        let text: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        if text.is_empty() {
            return Ok(Self::MySql(BTreeMap::new()));
        }
        if text.contains(':') {
            parse_mysql(&text).map(Self::MySql)
        } else {
            parse_mariadb(&text).map(Self::MariaDb)
        }
    }

    /// Transactions in `self` (the source) that `task` does not hold; `None` when the two are
    /// of different families and cannot be compared.
    pub fn missing_from(&self, task: &Gtids) -> Option<u64> {
        match (self, task) {
            // Saturating: a hostile answer can hold intervals up to u64::MAX.
            (Self::MySql(source), Self::MySql(task)) => Some(
                source
                    .iter()
                    .map(|(server, intervals)| {
                        let held = task.get(server).map(Vec::as_slice).unwrap_or_default();
                        intervals
                            .iter()
                            .map(|interval| uncovered(*interval, held))
                            .fold(0, u64::saturating_add)
                    })
                    .fold(0, u64::saturating_add),
            ),
            (Self::MariaDb(source), Self::MariaDb(task)) => Some(
                source
                    .iter()
                    .map(|(domain, seq)| seq.saturating_sub(task.get(domain).copied().unwrap_or(0)))
                    .fold(0, u64::saturating_add),
            ),
            _ => None,
        }
    }
}

/// The set as the servers write it (MySQL `uuid:1-5:7,uuid:tag:1-3`, MariaDB
/// `domain-0-seq`, the server id not being kept): parsing it gives the same set back.
impl std::fmt::Display for Gtids {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        let mut separator = |f: &mut std::fmt::Formatter<'_>| {
            let comma = if first { "" } else { "," };
            first = false;
            f.write_str(comma)
        };
        match self {
            Self::MySql(sets) => {
                for ((uuid, tag), intervals) in sets {
                    separator(f)?;
                    f.write_str(uuid)?;
                    if !tag.is_empty() {
                        write!(f, ":{tag}")?;
                    }
                    for (start, end) in intervals {
                        if start == end {
                            write!(f, ":{start}")?;
                        } else {
                            write!(f, ":{start}-{end}")?;
                        }
                    }
                }
            }
            Self::MariaDb(domains) => {
                for (domain, seq) in domains {
                    separator(f)?;
                    write!(f, "{domain}-0-{seq}")?;
                }
            }
        }
        Ok(())
    }
}

/// How many numbers of the inclusive `interval` none of the sorted disjoint `held` covers.
fn uncovered((start, end): (u64, u64), held: &[(u64, u64)]) -> u64 {
    let mut count = end - start + 1;
    for &(from, to) in held {
        let (a, b) = (from.max(start), to.min(end));
        if a <= b {
            count -= b - a + 1;
        }
    }
    count
}

fn parse_mysql(text: &str) -> Result<MySqlSet, MalformedGtid> {
    let malformed = |part: &str| MalformedGtid(part.chars().take(60).collect());
    let mut sets = MySqlSet::new();
    for part in text.split(',').filter(|p| !p.is_empty()) {
        let mut fields = part.split(':');
        let uuid = fields.next().unwrap_or_default().to_ascii_lowercase();
        if uuid.len() != 36 || !uuid.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            return Err(malformed(part));
        }
        let mut tag = String::new();
        let mut intervals = Vec::new();
        // A tag waiting for its intervals, and whether any interval was seen.
        let (mut pending_tag, mut any) = (false, false);
        for field in fields {
            if field.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
                // MySQL 8.3+ tagged GTIDs: `uuid:tag:1-5` (a tag applies to what follows it).
                if pending_tag {
                    return Err(malformed(part));
                }
                sets.entry((uuid.clone(), tag.clone()))
                    .or_default()
                    .append(&mut intervals);
                tag = field.to_ascii_lowercase();
                pending_tag = true;
                continue;
            }
            let (start, end) = match field.split_once('-') {
                Some((a, b)) => (a.parse::<u64>(), b.parse::<u64>()),
                None => (field.parse::<u64>(), field.parse::<u64>()),
            };
            match (start, end) {
                (Ok(start), Ok(end)) if start >= 1 && start <= end => intervals.push((start, end)),
                _ => return Err(malformed(part)),
            }
            (pending_tag, any) = (false, true);
        }
        if pending_tag || !any {
            return Err(malformed(part));
        }
        sets.entry((uuid, tag)).or_default().append(&mut intervals);
    }
    for intervals in sets.values_mut() {
        normalize(intervals);
    }
    sets.retain(|_, intervals| !intervals.is_empty());
    Ok(sets)
}

/// Sorts and merges overlapping or adjacent intervals.
fn normalize(intervals: &mut Vec<(u64, u64)>) {
    intervals.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(intervals.len());
    for &(start, end) in intervals.iter() {
        match merged.last_mut() {
            Some(last) if start <= last.1.saturating_add(1) => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    *intervals = merged;
}

fn parse_mariadb(text: &str) -> Result<BTreeMap<u32, u64>, MalformedGtid> {
    let mut domains = BTreeMap::new();
    for part in text.split(',').filter(|p| !p.is_empty()) {
        let fields: Vec<&str> = part.split('-').collect();
        let parsed = match fields.as_slice() {
            [domain, server, seq] => domain
                .parse::<u32>()
                .ok()
                .zip(server.parse::<u32>().ok())
                .zip(seq.parse::<u64>().ok()),
            _ => None,
        };
        let Some(((domain, _server), seq)) = parsed else {
            return Err(MalformedGtid(part.chars().take(60).collect()));
        };
        let entry = domains.entry(domain).or_insert(0);
        *entry = (*entry).max(seq);
    }
    Ok(domains)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_printed_parses_back_to_the_same_set() {
        for text in [
            "3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5:7:9-12,\n8a94f357-aab4-11df-86ab-c80aa9429562:tag_1:3",
            "0-1-100,2-7-5",
            "",
        ] {
            let set = Gtids::parse(text).unwrap();
            assert_eq!(Gtids::parse(&set.to_string()).unwrap(), set, "{text} -> {set}");
        }
        // Huge intervals count without overflowing.
        let huge = Gtids::parse(&format!("{A}:1-{max},{B}:1-{max}", max = u64::MAX)).unwrap();
        let empty = Gtids::parse("").unwrap();
        assert_eq!(huge.missing_from(&empty), Some(u64::MAX));
    }

    const A: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
    const B: &str = "8a94f357-aab4-11df-86ab-c80aa9429562";

    fn missing(source: &str, task: &str) -> Option<u64> {
        Gtids::parse(source)
            .unwrap()
            .missing_from(&Gtids::parse(task).unwrap())
    }

    #[test]
    fn mysql_sets_count_what_the_task_lacks_per_server() {
        assert_eq!(
            missing(&format!("{A}:1-100"), &format!("{A}:1-90")),
            Some(10)
        );
        assert_eq!(
            missing(&format!("{A}:1-100"), &format!("{A}:1-100")),
            Some(0)
        );
        // Gaps on either side, several servers, a server the task never saw.
        assert_eq!(
            missing(
                &format!("{A}:1-100:200-300,\n{B}:1-5"),
                &format!("{A}:1-50:60-100:250")
            ),
            Some(9 + 100 + 5)
        );
        // Uppercase uuids are the same server; a task ahead of the source lacks nothing.
        assert_eq!(
            missing(&format!("{A}:1-10"), &format!("{}:1-20", A.to_uppercase())),
            Some(0)
        );
        assert_eq!(missing("", &format!("{A}:1-20")), Some(0));
    }

    #[test]
    fn mysql_tagged_gtids_are_their_own_sequences() {
        assert_eq!(
            missing(
                &format!("{A}:1-10:audit:1-5"),
                &format!("{A}:1-10:audit:1-2")
            ),
            Some(3)
        );
        assert_eq!(
            missing(&format!("{A}:audit:1-5"), &format!("{A}:1-5")),
            Some(5)
        );
    }

    #[test]
    fn mariadb_positions_count_per_domain() {
        assert_eq!(missing("0-1-100,1-2-50", "0-1-90,1-2-50"), Some(10));
        assert_eq!(missing("0-1-100,1-2-50", "0-1-90"), Some(60));
        assert_eq!(missing("0-1-100", "0-1-120"), Some(0));
        // Families cannot be compared.
        assert_eq!(missing("0-1-100", &format!("{A}:1-5")), None);
    }

    #[test]
    fn malformed_texts_are_refused() {
        for text in [
            "not-a-gtid",
            "3e11fa47:1-5",
            &format!("{A}:5-1"),
            &format!("{A}:0-3"),
            &format!("{A}:x"),
            "0-1",
            "0-1-x",
        ] {
            assert!(Gtids::parse(text).is_err(), "{text}");
        }
    }
}
