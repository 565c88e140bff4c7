//! Performance reports (`--report`, `REPORT`, the status page) and Chrome traces
//! (`--trace-out`) of real queries: the operators, worker lanes and totals they show agree with
//! the query's own counts (`--stats`) and with a brute-force reference; the HTML renders in
//! headless Chromium.

use std::io::Read;
use std::process::Command;

use serde_json::Value as Json;
use starflow_e2e::fixture::{DP02, Scratch, dp02};
use starflow_e2e::serve::ServeProcess;
use starflow_e2e::{output_lines, starflow_query};

const GROUP_BY: &str =
    "SELECT tract, COUNT(*) AS n, AVG(mag_i) AS mean_i FROM dp02 WHERE mag_i < 26 GROUP BY tract ORDER BY n DESC";

/// The JSON a report embeds.
fn embedded(html: &str) -> Json {
    let start = html.find(r#"id="starflow-report">"#).expect("the report embeds its data") + 21;
    let end = start + html[start..].find("</script>").expect("end of the embedded data");
    serde_json::from_str(&html[start..end].replace("<\\/", "</")).expect("the embedded data is JSON")
}

/// `key=value` pairs of the `--stats` line.
fn stats(stderr: &str) -> std::collections::HashMap<String, f64> {
    let line = stderr.lines().find(|l| l.starts_with("stats:")).expect("a stats line");
    line.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.parse().unwrap()))
        .collect()
}

/// Rows with mag_i < 26 in each tract (the reference for the group-by).
fn reference_counts() -> std::collections::BTreeMap<i64, u64> {
    let mut counts = std::collections::BTreeMap::new();
    for r in dp02().rows.iter().filter(|r| r.f32("mag_i") < 26.0) {
        *counts.entry(i64::from(r.tract)).or_insert(0) += 1;
    }
    counts
}

/// Runs the group-by with a report and checks the report against the query's own numbers.
fn check_report(extra: &[&str], processes: usize, workers: usize) -> String {
    let scratch = Scratch::new("report");
    let report = scratch.join("report.html");
    let mut args = vec!["--format", "csv", "--stats", "--report", report.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = starflow_query(&args, GROUP_BY);
    let lines = output_lines(out.ok(), false);
    // The result itself, against brute force.
    let expected = reference_counts();
    let got: std::collections::BTreeMap<i64, u64> = lines[1..]
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].parse().unwrap(), f[1].parse().unwrap())
        })
        .collect();
    assert_eq!(got, expected);
    let stats = stats(&out.stderr);
    let html = std::fs::read_to_string(&report).expect("the report was written");
    let data = embedded(&html);
    // The summary agrees with --stats.
    for (field, stat) in [("rows_read", "rows_read"), ("rows_matched", "rows_matched"), ("rows_out", "rows_out")] {
        assert_eq!(data[field].as_f64().unwrap(), stats[stat], "{field}");
    }
    assert_eq!(data["partitions_read"].as_f64().unwrap(), stats["partitions_read"]);
    assert_eq!(data["rows_out"].as_u64().unwrap(), expected.len() as u64);
    assert_eq!(data["rows_matched"].as_u64().unwrap(), expected.values().sum::<u64>());
    assert_eq!(data["processes"].as_u64().unwrap() as usize, processes);
    assert_eq!(data["workers"].as_u64().unwrap() as usize, processes * workers);
    let profile = &data["profile"];
    // One entry per process, each with its workers; every worker ran the scan.
    let procs = profile["processes"].as_array().unwrap();
    assert_eq!(procs.len(), processes);
    let mut seen_workers = Vec::new();
    for p in procs {
        let ws = p["workers"].as_array().unwrap();
        assert_eq!(ws.len(), workers, "workers of process {}", p["process"]);
        assert!(!p["samples"].as_array().unwrap().is_empty(), "CPU/memory samples of process {}", p["process"]);
        for w in ws {
            seen_workers.push(w["worker"].as_u64().unwrap() as usize);
            let names: Vec<&str> =
                w["operators"].as_array().unwrap().iter().map(|o| o["name"].as_str().unwrap()).collect();
            for op in ["Scan[dp02]", "AggregatePartial[tract]", "AggregateFinal[tract]", "Sink"] {
                assert!(names.contains(&op), "worker {} lacks {op}: {names:?}", w["worker"]);
            }
            let scan = w["operators"].as_array().unwrap().iter().position(|o| o["name"] == "Scan[dp02]").unwrap();
            let spans = w["spans"].as_array().unwrap();
            assert!(spans.iter().any(|s| s[0].as_u64() == Some(scan as u64)), "no scan span on worker {}", w["worker"]);
            for s in spans {
                assert!(s[1].as_u64().unwrap() <= s[2].as_u64().unwrap(), "a span ends before it starts: {s}");
            }
        }
    }
    seen_workers.sort();
    assert_eq!(seen_workers, (0..processes * workers).collect::<Vec<_>>());
    // Plan nodes: the root gives the result's rows, the scan the rows that passed its predicate.
    let nodes = profile["nodes"].as_array().unwrap();
    assert_eq!(nodes.first().unwrap()["rows_out"].as_u64().unwrap(), expected.len() as u64);
    assert!(nodes.last().unwrap()["label"].as_str().unwrap().starts_with("Scan dp02"));
    assert_eq!(nodes.last().unwrap()["rows_out"].as_u64().unwrap(), expected.values().sum::<u64>());
    // Traffic between processes: only with several of them, and the matrix adds up.
    for p in procs {
        let to: Vec<u64> = p["bytes_to"].as_array().unwrap().iter().map(|b| b.as_u64().unwrap()).collect();
        assert_eq!(to.iter().sum::<u64>(), p["bytes_sent"].as_u64().unwrap());
        if processes > 1 {
            assert_eq!(to.len(), processes);
            assert_eq!(to[p["process"].as_u64().unwrap() as usize], 0, "a process sends nothing to itself");
        }
    }
    if processes > 1 {
        assert!(procs.iter().map(|p| p["bytes_sent"].as_u64().unwrap()).sum::<u64>() > 0);
    }
    // The page shows a lane per worker and every operator by name.
    assert_eq!(html.matches(r#"class="lane""#).count(), processes * workers, "worker lanes");
    for op in ["Scan[dp02]", "AggregatePartial[tract]", "Sort["] {
        assert!(html.contains(op), "the page does not name {op}");
    }
    for section in ["summary", "plan", "operators", "task-stream", "resources", "network"] {
        assert!(html.contains(&format!(r#"id="{section}""#)), "no {section} section");
    }
    assert!(!html.contains("<script src") && !html.contains("<link"), "the page loads something from outside");
    html
}

#[test]
fn a_report_of_one_worker_agrees_with_the_query() {
    check_report(&["--workers", "1"], 1, 1);
}

#[test]
fn a_report_of_three_workers_has_three_lanes() {
    check_report(&["--workers", "3"], 1, 3);
}

#[test]
fn a_report_of_two_processes_shows_both_and_their_traffic() {
    let html = check_report(&["--processes", "2", "--workers", "2"], 2, 2);
    screenshot_is_not_blank(&html);
}

/// Renders the page in headless Chromium (Debian's chromium-headless-shell or chromium) and
/// checks the screenshot: a real image, mostly background but with many drawn pixels.
fn screenshot_is_not_blank(html: &str) {
    let scratch = Scratch::new("screenshot");
    let page = scratch.join("report.html");
    std::fs::write(&page, html).unwrap();
    let png = scratch.join("report.png");
    let browser = ["chromium-headless-shell", "chromium"]
        .into_iter()
        .find(|b| Command::new(b).arg("--version").output().is_ok_and(|o| o.status.success()))
        .expect("headless Chromium is needed (apt-get install chromium-headless-shell; .ci/run installs it)");
    let out = Command::new(browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1400,2000"])
        .arg(format!("--user-data-dir={}", scratch.join("profile").display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.display()))
        .env("HOME", scratch.path())
        .output()
        .expect("run chromium");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "chromium failed:\n{log}");
    assert!(!log.contains("Uncaught"), "the page raised a script error:\n{log}");
    let (width, height, pixels) = starflow_e2e::image::decode_png(&png);
    assert_eq!((width, height), (1400, 2000));
    let background = pixels[0];
    let drawn = pixels.iter().filter(|p| **p != background).count();
    let colours: std::collections::HashSet<[u8; 3]> = pixels.iter().copied().collect();
    assert!(drawn > pixels.len() / 50, "only {drawn} of {} pixels drawn", pixels.len());
    assert!(colours.len() > 50, "only {} colours: the charts and text are missing", colours.len());
}

#[test]
fn a_chrome_trace_has_every_phase_and_a_scan_span_per_partition() {
    let scratch = Scratch::new("trace");
    let trace = scratch.join("trace.json");
    let out = starflow_query(&["--workers", "2", "--stats", "--trace-out", trace.to_str().unwrap()], GROUP_BY);
    out.ok();
    let stats = stats(&out.stderr);
    let events: Vec<Json> = serde_json::from_str(&std::fs::read_to_string(&trace).unwrap()).unwrap();
    let spans = |name: &str| events.iter().filter(|e| e["ph"] == "X" && e["name"] == name).collect::<Vec<_>>();
    for phase in ["plan", "query", "install", "scan", "exchange", "sink"] {
        assert!(!spans(phase).is_empty(), "no {phase} span");
    }
    let scans = spans("scan");
    assert_eq!(scans.len() as f64, stats["partitions_read"]);
    assert_eq!(scans.iter().map(|s| s["args"]["rows"].as_u64().unwrap()).sum::<u64>() as f64, stats["rows_read"]);
    let files: std::collections::HashSet<&str> = scans.iter().map(|s| s["args"]["file"].as_str().unwrap()).collect();
    assert_eq!(files.len(), dp02().files.len());
    // Scans run on the two worker threads, each named in the trace.
    let lanes: std::collections::HashSet<u64> = scans.iter().map(|s| s["tid"].as_u64().unwrap()).collect();
    assert_eq!(lanes.len(), 2, "scan lanes");
    let names: Vec<&str> =
        events.iter().filter(|e| e["name"] == "thread_name").map(|e| e["args"]["name"].as_str().unwrap()).collect();
    assert!(names.len() >= 3, "{names:?}");
    let query = spans("query")[0];
    assert_eq!(query["args"]["rows_out"].as_u64().unwrap(), reference_counts().len() as u64);
    for s in scans {
        assert!(s["ts"].as_f64().unwrap() >= query["ts"].as_f64().unwrap(), "a scan before its query");
    }
}

#[test]
fn every_process_writes_its_own_trace() {
    let scratch = Scratch::new("trace2");
    let trace = scratch.join("t.json");
    starflow_query(&["--processes", "2", "--workers", "1", "--trace-out", trace.to_str().unwrap()], GROUP_BY).ok();
    for (file, pid) in [(trace.clone(), 0), (scratch.join("t.1.json"), 1)] {
        let events: Vec<Json> = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        assert!(events.iter().any(|e| e["name"] == "scan"), "{} has no scan", file.display());
        assert!(events.iter().all(|e| e["pid"] == pid), "{} mixes processes", file.display());
    }
}

#[test]
fn log_levels_come_from_the_flag_or_rust_log() {
    let ok = starflow_e2e::starflow(&[
        "--log-level",
        "starflow_launcher=off,starflow=debug",
        "query",
        "--catalog",
        &format!("{DP02}={}", dp02().dir.display()),
        "SELECT COUNT(*) FROM dp02",
    ]);
    assert!(ok.ok().contains("COUNT(*)"));
    assert!(ok.stderr.contains("catalog opened"), "debug events of the binary: {}", ok.stderr);
    let bad = starflow_e2e::starflow(&["--log-level", "starflow=loud", "query", "--catalog", "x=y", "SELECT 1"]);
    bad.clean_error(&["--log-level", "starflow=loud"]);
}

#[test]
fn the_server_reports_its_queries_and_shows_a_status_page() {
    let catalog = format!("{DP02}={}", dp02().dir.display());
    let server = ServeProcess::start(&["--catalog", catalog.as_str(), "--workers", "2"]);
    let mine = server.scratch().join("mine.html");
    let to = format!("REPORT TO '{}'", mine.display());
    let out = server.repl(&["--format", "csv", "-c", GROUP_BY, "-c", &to, "-c", "REPORT"]);
    let stdout = out.ok();
    assert!(stdout.contains(&format!("report of query 1 written to {}", mine.display())), "{stdout}");
    let mine = std::fs::read_to_string(&mine).expect("the REPL wrote the report");
    let data = embedded(&mine);
    assert_eq!(data["statement"], GROUP_BY);
    assert_eq!(data["rows_out"].as_u64().unwrap(), reference_counts().len() as u64);
    assert_eq!(mine.matches(r#"class="lane""#).count(), 2);
    // Without TO, the page goes to standard output.
    assert!(stdout.contains("<!doctype html>"));
    // A query id the server does not keep, and a malformed REPORT, fail cleanly.
    server.repl(&["-c", "REPORT 999"]).clean_error(&["no report of query 999"]);
    server.repl(&["-c", "REPORT me"]).clean_error(&["REPORT [query id]"]);
    // The status page: the token in the address or the header; 401 without it.
    let info: Json = serde_json::from_str(&std::fs::read_to_string(&server.conn).unwrap()).unwrap();
    let token = info["token"].as_str().unwrap();
    let address = format!("{}:{}", info["host"].as_str().unwrap(), info["port"]);
    let page = http_get(&address, &format!("/status?token={token}"));
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    for needle in ["Running queries", "Processes", "Reports of the last queries", "/report/1?token="] {
        assert!(page.contains(needle), "the status page lacks {needle}");
    }
    assert!(page.contains(&format!("<td>{}</td>", server.pid())), "the status page lacks the server's process");
    assert!(http_get(&address, "/status").starts_with("HTTP/1.1 401"));
    assert!(http_get(&address, "/status?token=nope").starts_with("HTTP/1.1 401"));
    let report = http_get(&address, &format!("/report/1?token={token}"));
    assert!(report.starts_with("HTTP/1.1 200") && report.contains(r#"id="task-stream""#), "{}", &report[..200]);
    assert!(http_get(&address, &format!("/report/77?token={token}")).starts_with("HTTP/1.1 404"));
}

/// A GET request; the whole reply (status line, headers, body).
fn http_get(address: &str, path: &str) -> String {
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    std::io::Write::write_all(&mut stream, request.as_bytes()).unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    reply
}
