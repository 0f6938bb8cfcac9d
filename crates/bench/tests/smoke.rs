//! Smoke test of the bench command at a tiny size (a few seconds): it starts the services,
//! imports, compares with the baseline, prints JSON lines with the documented keys and cleans
//! up. The real figures come from `cargo run --release -p bench -- <scenario>`, never from tests.

use std::process::Command;

fn run(args: &[&str]) -> Vec<serde_json::Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(args)
        .output()
        .expect("bench runs");
    assert!(
        out.status.success(),
        "bench {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

#[test]
fn ingest_and_baseline_print_their_figures() {
    let lines = run(&["baseline", "--orders", "120"]);
    assert_eq!(lines.len(), 2, "{lines:?}");
    let (ingest, baseline) = (&lines[0], &lines[1]);
    assert_eq!(ingest["scenario"], "ingest");
    assert_eq!(ingest["orders"], 120);
    assert_eq!(ingest["amazon_calls"]["searchOrders"], 2);
    assert_eq!(ingest["throttled_429"], 0);
    for key in [
        "seconds",
        "per_second",
        "calls_per_1000_orders",
        "peak_rss_mb",
    ] {
        assert!(ingest[key].is_number(), "{key} in {ingest}");
    }
    assert!(ingest["machine"]["cores"].as_u64().unwrap() >= 1);
    assert_eq!(baseline["scenario"], "baseline");
    assert_eq!(baseline["amazon_calls"]["getOrderItems"], 120);
    assert_eq!(baseline["amazon_calls"]["getOrders"], 2);
    assert!(
        baseline["versus_connector"]["calls_ratio_baseline_over_connector"]
            .as_f64()
            .unwrap()
            > 10.0
    );
}
