//! What every target that renders asserts of the text exposition: each sample line is
//! `name{labels} value` with a valid metric name, quoted label values closed and escaped, and a
//! finite value (the exporter never writes a value that is not a measurement).

/// Panics, naming the line, when `text` is not valid exposition text.
pub fn check(text: &str) {
    for line in text.lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value: {line}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value: {line}"));
        assert!(value.is_finite(), "not a measurement: {line}");
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty()
                && name.chars().enumerate().all(|(i, c)| c == '_'
                    || c == ':'
                    || c.is_ascii_alphabetic()
                    || (i > 0 && c.is_ascii_digit())),
            "bad name: {line}"
        );
        if name_end < series.len() {
            labels(&series[name_end..], line);
        }
    }
}

/// `{a="x",b="y"}`: every value quoted, only `\\`, `\"` and `\n` escaped; returns the values.
pub fn labels(block: &str, line: &str) -> Vec<(String, String)> {
    let inner = block
        .strip_prefix('{')
        .and_then(|b| b.strip_suffix('}'))
        .unwrap_or_else(|| panic!("unbalanced labels: {line}"));
    let mut out = Vec::new();
    let mut chars = inner.chars().peekable();
    while chars.peek().is_some() {
        let name: String = chars.by_ref().take_while(|c| *c != '=').collect();
        assert!(!name.is_empty(), "empty label name: {line}");
        assert_eq!(chars.next(), Some('"'), "unquoted value: {line}");
        let mut value = String::new();
        loop {
            match chars.next() {
                Some('\\') => match chars.next() {
                    Some('\\') => value.push('\\'),
                    Some('"') => value.push('"'),
                    Some('n') => value.push('\n'),
                    other => panic!("bad escape {other:?}: {line}"),
                },
                Some('"') => break,
                Some(c) => {
                    assert!(c != '\n', "raw newline: {line}");
                    value.push(c);
                }
                None => panic!("unterminated value: {line}"),
            }
        }
        out.push((name, value));
        match chars.next() {
            Some(',') | None => {}
            Some(other) => panic!("unexpected {other:?}: {line}"),
        }
    }
    out
}
