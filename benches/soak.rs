//! Soak run: the release binary polls 1,000 discovered tasks every 2 s while a fault injector
//! keeps breaking a tenth of them at random (every fault class) and churns the task set. Every
//! 15 s it records the exporter's RSS and open file descriptors; at the end the faults stop and
//! every task must be back `up`. Bounded: `SOAK_MINUTES` (default 3); `SOAK_INTERVAL` sets
//! the poll interval (default "2s"). Run with `cargo bench --bench soak`; results go to
//! BENCHMARKS.md by hand.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use serde_json::json;
use tokio_util::sync::CancellationToken;
use udts_exporter::simulator::{Behaviour, Gateway, SimTask};

const PUBLIC_KEY: &str = "soak-public";
const PRIVATE_KEY: &str = "soak-private";
const TASKS: usize = 1000;

/// xorshift64: enough randomness for choosing faults, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn healthy(i: usize) -> Behaviour {
    Behaviour::Fixed(
        json!({"Status": "Syncing", "Sync": {"BinlogName": "mysql-bin.000001", "BinlogPos": i}}),
    )
}

fn fault(rng: &mut Rng) -> Behaviour {
    let raw = |status: u16, body: &str| Behaviour::Raw {
        status,
        body: body.into(),
    };
    match rng.below(10) {
        0 => raw(500 + rng.below(5) as u16, "error"),
        1 => raw(429, "slow down"),
        2 => Behaviour::Hang,
        3 => Behaviour::CutOff,
        4 => raw(200, "<html>maintenance</html>"),
        5 => Behaviour::Large(2 * 1024 * 1024),
        6 => Behaviour::RetCode(150, "busy".into()),
        7 => Behaviour::RetCode(153, "throttled".into()),
        8 => Behaviour::Slow(Duration::from_secs(2), json!({"Status": "Synced"})),
        _ => Behaviour::Fixed(json!({"Status": "Teleporting", "Progress": {"Percentage": "NaN"}})),
    }
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

#[tokio::main]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let minutes: u64 = std::env::var("SOAK_MINUTES")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(3);
    let interval = std::env::var("SOAK_INTERVAL").unwrap_or_else(|_| "2s".into());
    let shutdown = CancellationToken::new();
    let gateway = Gateway::new(PUBLIC_KEY, PRIVATE_KEY);
    for i in 0..TASKS {
        gateway.add_task(SimTask::new(&format!("udts-soak-{i:05}"), healthy(i)));
    }
    let endpoint = gateway.start_on_loopback(shutdown.clone()).await.unwrap();
    let config = format!(
        "[api]\nendpoint = \"{endpoint}\"\npublic_key = \"{PUBLIC_KEY}\"\nprivate_key = \"{PRIVATE_KEY}\"\nconcurrency = 32\ntimeout = \"500ms\"\n[poll]\ninterval = \"{interval}\"\n[discovery]\nenabled = true\nkinds = [\"transfer\"]\nrefresh_interval = \"5s\"\n"
    );
    let (mut exporter, _dir) = common::spawn_with_config(&config, "error").await;
    let pid = exporter.child.id().unwrap();
    let url = exporter.url.clone();
    let client = common::http_client();

    println!("| minute | RSS | open fds | tasks exported | poll cycles |");
    println!("|---|---|---|---|---|");
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let started = Instant::now();
    let end = started + Duration::from_secs(minutes * 60);
    let mut next_sample = started;
    let mut churned = 0usize;
    while Instant::now() < end {
        // Break a tenth of the tasks, heal the rest; retire and add a few (churn).
        for i in 0..TASKS {
            let id = format!("udts-soak-{i:05}");
            let behaviour = if rng.below(10) == 0 {
                fault(&mut rng)
            } else {
                healthy(i)
            };
            gateway.set_behaviour(&id, behaviour);
        }
        for _ in 0..5 {
            let old = format!("udts-churn-{churned:06}");
            gateway.remove_task(&old);
            churned += 1;
            gateway.add_task(SimTask::new(
                &format!("udts-churn-{:06}", churned + 4),
                healthy(0),
            ));
        }
        if Instant::now() >= next_sample {
            let text = client.get(&url).send().await.unwrap().text().await.unwrap();
            let exported = text
                .lines()
                .filter(|l| l.starts_with("udts_task_info{"))
                .count();
            let polls: f64 = text
                .lines()
                .find_map(|l| {
                    l.strip_prefix("udts_api_requests_total{action=\"GetUDTSTaskStatus\"} ")
                })
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0);
            println!(
                "| {:.1} | {} MiB | {} | {exported} | ~{:.0} |",
                started.elapsed().as_secs_f64() / 60.0,
                common::proc_status_kib(pid, "VmRSS:") / 1024,
                open_fds(pid),
                polls / TASKS as f64,
            );
            next_sample += Duration::from_secs(15);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }

    // Faults stop: every task must be read again within a few cycles.
    for i in 0..TASKS {
        gateway.set_behaviour(&format!("udts-soak-{i:05}"), healthy(i));
    }
    let recovery = Instant::now();
    loop {
        let text = client.get(&url).send().await.unwrap().text().await.unwrap();
        let down = text
            .lines()
            .filter(|l| l.starts_with("udts_task_up{") && l.ends_with(" 0"))
            .count();
        if down == 0 {
            println!(
                "\nall tasks up again {:.1} s after the faults stopped; peak RSS {} MiB; exporter still running: {}",
                recovery.elapsed().as_secs_f64(),
                common::proc_status_kib(pid, "VmHWM:") / 1024,
                exporter.child.try_wait().unwrap().is_none(),
            );
            break;
        }
        assert!(
            recovery.elapsed() < Duration::from_secs(60),
            "{down} tasks still down"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    exporter.child.kill().await.unwrap();
    shutdown.cancel();
}
