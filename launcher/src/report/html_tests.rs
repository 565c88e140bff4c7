//! Tests of the report page on hand-built profiles.

use starflow_dataflow::plan::PruningSummary;
use starflow_dataflow::profile::{NodeProfile, OperatorProfile, ProcessProfile, Sample, WorkerProfile};

use super::*;

fn op(name: &str, address: &[usize], busy_us: u64) -> OperatorProfile {
    OperatorProfile {
        name: name.into(),
        address: address.to_vec(),
        busy_us,
        activations: 3,
        batches_out: 2,
        batches_in: 1,
    }
}

fn worker(worker: usize) -> WorkerProfile {
    let operators = vec![
        op("Scan[dp02]", &[0, 1], 9_000 + 1_000 * worker as u64),
        op("AggregatePartial[tract]", &[0, 2], 2_000),
        op("Sink", &[0, 3], 50),
        op("Query", &[0], 12_000),
    ];
    let spans = vec![(0, 100, 5_000), (1, 5_000, 7_000), (0, 7_000, 9_000), (2, 9_500, 9_550), (3, 0, 10_000)];
    WorkerProfile { worker, operators, spans, spans_dropped: if worker == 3 { 7 } else { 0 } }
}

fn input() -> ReportInput {
    let processes = (0..2)
        .map(|p| ProcessProfile {
            process: p,
            host: format!("node<{p}>"),
            pid: 100 + p as u32,
            workers: vec![worker(2 * p), worker(2 * p + 1)],
            samples: (0..3)
                .map(|i| Sample { t_ms: 4.0 * i as f64, cpu: 1.5, rss_mib: 40.0 + i as f64, bytes_sent: 100 * i })
                .collect(),
            bytes_sent: 1_234,
            bytes_to: if p == 0 { vec![0, 1_234] } else { vec![1_000, 0] },
            start_unix_us: 0,
        })
        .collect();
    let nodes = vec![
        NodeProfile { label: "Aggregate by [tract]".into(), depth: 0, rows_out: 8, batches_out: 2 },
        NodeProfile { label: "Scan dp02".into(), depth: 1, rows_out: 130_659, batches_out: 16 },
    ];
    ReportInput {
        statement: "SELECT a FROM t WHERE b < 3 AND c > 'x' & \"y\" </script>".into(),
        version: "0.1.0".into(),
        started: "2026-12-01 19:22:20 UTC".into(),
        processes: 2,
        workers: 4,
        seconds: 0.0123,
        partitions_read: 8,
        rows_read: 7_700_000,
        rows_matched: 130_659,
        bytes_read: 1_200_000,
        rows_out: 8,
        bytes_sent: 2_234,
        scans: vec![(
            "dp02".into(),
            PruningSummary {
                files_total: 8,
                files_kept: 6,
                row_groups_total: 16,
                row_groups_kept: 10,
                rows_kept: 100,
                lazy_files: 0,
            },
        )],
        profile: QueryProfile { processes, nodes },
    }
}

#[test]
fn one_lane_per_worker_and_every_operator() {
    let page = render(&input());
    assert_eq!(page.matches(r#"<g class="lane""#).count(), 4);
    for w in 0..4 {
        assert!(page.contains(&format!(r#"data-worker="{w}""#)), "worker {w}");
    }
    assert!(page.contains("process 1 · worker 3"));
    for name in ["Scan[dp02]", "AggregatePartial[tract]", "Sink", "Query"] {
        assert_eq!(page.matches(&format!(r#"<tr data-operator="{name}""#)).count(), 1, "{name}");
    }
    for id in ["summary", "plan", "operators", "task-stream", "resources", "network"] {
        assert!(page.contains(&format!(r#"id="{id}""#)), "{id}");
    }
    // Two runs of the scan per lane, far apart; the enclosing scope is no block.
    assert_eq!(page.matches("<title>Scan[dp02]: ").count(), 2 * 4);
    assert!(!page.contains("<title>Query:"));
    assert!(page.contains("Worker 3: 7 later spans"));
    assert!(page.contains("node&lt;1&gt;"));
    assert!(page.contains("7.70 M") && page.contains("1.20 MB"));
}

#[test]
fn self_contained_and_escaped() {
    let page = render(&input());
    let without_ns = page.replace(r#"xmlns="http://www.w3.org/2000/svg""#, "");
    for bad in ["http://", "https://", "<link", "src=", "@import", "url("] {
        assert!(!without_ns.contains(bad), "{bad}");
    }
    assert!(page.contains("b &lt; 3 AND c &gt; &#39;x&#39; &amp; &quot;y&quot; &lt;/script&gt;"));
    assert_eq!(page.matches("</script>").count(), 1);
    let json = page.split(r#"id="starflow-report">"#).nth(1).and_then(|s| s.split("</script>").next()).unwrap();
    let back: serde_json::Value = serde_json::from_str(&json.replace("<\\/", "</")).unwrap();
    assert_eq!(back["statement"], input().statement);
    assert_eq!(back["profile"]["processes"].as_array().map(Vec::len), Some(2));
}

#[test]
fn empty_profile_and_one_process() {
    let mut empty = input();
    (empty.profile, empty.processes, empty.workers, empty.scans) = (QueryProfile::default(), 1, 1, Vec::new());
    let page = render(&empty);
    assert!(page.contains("No operators were recorded"));
    assert!(page.contains("nothing crossed the network"));
    assert!(page.contains(r#"id="starflow-report""#));
    let mut one = input();
    one.profile.processes.truncate(1);
    one.profile.processes[0].samples.truncate(1);
    one.profile.processes[0].workers.iter_mut().for_each(|w| w.spans.clear());
    (one.processes, one.workers) = (1, 2);
    let page = render(&one);
    assert_eq!(page.matches(r#"<g class="lane""#).count(), 2);
    assert!(page.contains("No operator spans were recorded"));
    assert!(page.contains("<circle"));
}

#[test]
fn many_spans_are_merged() {
    let mut big = input();
    for w in big.profile.processes.iter_mut().flat_map(|p| &mut p.workers) {
        w.spans = (0..20_000u64).map(|i| ((i % 3) as u32, i * 10, i * 10 + 4)).collect();
    }
    let page = render(&big);
    let blocks = page.matches(r#"<rect x=""#).count();
    assert!(blocks < 100, "{blocks} blocks");
    assert!(page.contains("<title>Scan[dp02]: 6667 runs"), "merged runs say how many");
}

#[test]
fn numbers() {
    assert_eq!(
        (fmt_us(245), fmt_us(26_100), fmt_us(1_520_000), fmt_us(185_000_000)),
        ("245 µs".into(), "26.1 ms".into(), "1.52 s".into(), "3 min 05 s".into())
    );
    assert_eq!(
        (fmt_bytes(812), fmt_bytes(1_200_000), fmt_count(130_659), fmt_count(7_700_000)),
        ("812 B".into(), "1.20 MB".into(), "130,659".into(), "7.70 M".into())
    );
    assert_eq!(svg::ticks(74.5, 10).1.len(), 9);
}
