//! The page's script says durations and sizes exactly as the server does: the twin functions of
//! `src/human.rs` in `src/page/udts.js` run in Node.js on the same values, halves and unit
//! boundaries included, and must give the same words.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::tool_available;
use udts_exporter::human;

#[test]
fn the_script_says_durations_sizes_and_latencies_as_the_server_does() {
    if !tool_available("node") {
        return;
    }
    let script = include_str!("../src/page/udts.js");
    let begin = script
        .find("// human: begin")
        .expect("the twin's begin marker");
    let end = script.find("// human: end").expect("the twin's end marker");
    let twin = &script[begin..end];

    let durations: Vec<f64> = [
        0.0, 0.4, 0.5, 1.25, 1.5, 2.5, 59.4, 59.5, 60.0, 125.0, 3599.4, 3599.5, 3600.0, 3629.0,
        3630.0, 5400.0, 7199.0, 79_199.0, 86_369.0, 86_370.0, 90_000.0, 529_200.0, -3.0,
    ]
    .into_iter()
    .chain((0..200).map(|i| f64::from(i) * 977.3 + 0.5))
    .collect();
    let latencies = [
        0.0, 0.0004, 0.0005, 0.25, 0.9994, 0.9995, 1.0, 1.05, 1.25, 1.35, 12.25,
    ];
    let sizes: Vec<u64> = [0, 1, 1023, 1024, 1280, 1331, 40_000, 1_048_575, 5_242_880]
        .into_iter()
        .chain((0..200).map(|i| 7_919_u64.pow(2) * i + 1))
        .chain([1 << 50, u64::from(u32::MAX)])
        .collect();

    let program = format!(
        "{twin}\nconsole.log(JSON.stringify({{durations: {d}.map(duration), \
         latencies: {l}.map(latency), sizes: {s}.map(size)}}));\n",
        d = serde_json::to_string(&durations).unwrap(),
        l = serde_json::to_string(&latencies).unwrap(),
        s = serde_json::to_string(&sizes).unwrap(),
    );
    let output = std::process::Command::new("node")
        .args(["-e", &program])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let said: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let script_said =
        |key: &str| -> Vec<String> { serde_json::from_value(said[key].clone()).unwrap() };
    let server: Vec<String> = durations.iter().map(|&s| human::duration(s)).collect();
    assert_eq!(script_said("durations"), server);
    let server: Vec<String> = latencies.iter().map(|&s| human::latency(s)).collect();
    assert_eq!(script_said("latencies"), server);
    let server: Vec<String> = sizes.iter().map(|&b| human::size(b)).collect();
    assert_eq!(script_said("sizes"), server);
    // The half that used to differ: Rust's {:.1} says 1.2, toFixed(1) said 1.3.
    assert_eq!(human::latency(1.25), "1.3 s");
}
