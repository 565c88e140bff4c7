//! Several processes over TCP (`--processes N`, `--hosts FILE`) give the same answers as one
//! process; a process that disagrees on the plan or never connects fails cleanly.

use std::process::Command;

use starflow_e2e::cli::{catalog_args, starflow_bin, starflow_query};

/// (sort the lines before comparing, SQL)
const QUERIES: &[(bool, &str)] = &[
    (true, "SELECT objectId, coord_ra, mag_i FROM dp02 WHERE mag_i < 23 AND coord_dec > -35"),
    (false, "SELECT COUNT(*) FROM dp02 WHERE mag_i < 26"),
    (
        true,
        "SELECT tract, patch, COUNT(*), AVG(mag_g - mag_r), STDDEV(mag_i), MIN(mag_i), MAX(mag_i) FROM dp02 GROUP BY tract, patch",
    ),
    (false, "SELECT objectId, mag_r FROM dp02 ORDER BY mag_r, objectId LIMIT 30"),
    (false, "SELECT objectId, coord_dec FROM dp02 WHERE mag_i < 22 ORDER BY coord_dec DESC, objectId"),
    (false, "SELECT * FROM dp02 WHERE mag_i < 26 LIMIT 9"),
    (false, "SELECT COUNT(*), SUM(patch) FROM dp02 WHERE mag_i > 100"),
];

use starflow_e2e::output_lines as normalised;

#[test]
fn local_processes_agree_with_one_process() {
    crate::check_all("multi-process", QUERIES, |(sort, sql)| {
        let single = starflow_query(&["--workers", "2", "--format", "csv"], sql);
        let single = normalised(single.ok(), *sort);
        for extra in [["--processes", "2", "--workers", "1"], ["--processes", "3", "--workers", "2"]] {
            let multi = starflow_query(&[&extra[..], &["--format", "csv"]].concat(), sql);
            if multi.code != Some(0) {
                return Err(format!("{extra:?} {sql}: failed: {}", multi.stderr));
            }
            if normalised(&multi.stdout, *sort) != single {
                return Err(format!("{extra:?} {sql}: differs from one process"));
            }
        }
        Ok(())
    });
}

#[test]
fn stats_report_every_process_and_few_bytes_for_aggregates() {
    let out = starflow_query(
        &["--processes", "3", "--workers", "1", "--format", "csv", "--stats"],
        "SELECT tract, COUNT(*), AVG(mag_i) FROM dp02 GROUP BY tract",
    );
    out.ok();
    let stats = out.stderr.lines().find(|l| l.starts_with("stats:")).expect("a stats line");
    let field = |name: &str| -> u64 {
        stats.split_whitespace().find_map(|f| f.strip_prefix(&format!("{name}="))).unwrap().parse().unwrap()
    };
    assert_eq!(field("processes"), 3, "{stats}");
    // Every process read its share: together, the whole catalog.
    assert_eq!(field("rows_read"), starflow_e2e::dp02().rows.len() as u64, "{stats}");
    let bytes = field("bytes_sent");
    assert!(bytes > 0 && bytes < 100_000, "a group-by sent {bytes} bytes between processes: {stats}");
}

#[test]
fn host_file_processes_agree_with_one_process() {
    let (_dir, hosts) = two_local_hosts("hosts");
    let sql = "SELECT tract, COUNT(*) FROM dp02 GROUP BY tract ORDER BY tract";
    let spawn = |process: usize| {
        Command::new(starflow_bin())
            .arg("query")
            .args(catalog_args())
            .args(["--hosts", hosts.to_str().unwrap(), "--process", &process.to_string(), "--format", "csv", sql])
            .output()
    };
    let (zero, one) = std::thread::scope(|s| {
        let one = s.spawn(|| spawn(1));
        let zero = spawn(0);
        (zero.unwrap(), one.join().unwrap().unwrap())
    });
    assert!(
        zero.status.success() && one.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&zero.stderr),
        String::from_utf8_lossy(&one.stderr)
    );
    assert!(one.stdout.is_empty(), "only process 0 prints results");
    let single = starflow_query(&["--format", "csv"], sql);
    assert_eq!(String::from_utf8_lossy(&zero.stdout), single.ok());
}

#[test]
fn a_process_that_never_connects_is_named() {
    let dir = starflow_e2e::Scratch::new("hosts-missing");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let hosts = dir.join("hosts.txt");
    std::fs::write(&hosts, format!("127.0.0.1:{port}\n127.0.0.1:9\n")).unwrap();
    let start = std::time::Instant::now();
    let out = starflow_query(
        &["--hosts", hosts.to_str().unwrap(), "--process", "0", "--connect-timeout", "2"],
        "SELECT COUNT(*) FROM dp02",
    );
    out.clean_error(&["process 1 (127.0.0.1:9)", "timed out"]);
    assert!(start.elapsed().as_secs() < 20, "gave up only after {:?}", start.elapsed());
}

#[test]
fn processes_started_with_different_statements_refuse_to_run() {
    let (_dir, hosts) = two_local_hosts("hosts-fingerprint");
    let run = |process: usize, sql: &str| {
        Command::new(starflow_bin())
            .arg("query")
            .args(catalog_args())
            .args([
                "--hosts",
                hosts.to_str().unwrap(),
                "--process",
                &process.to_string(),
                "--connect-timeout",
                "10",
                sql,
            ])
            .output()
            .unwrap()
    };
    let (zero, one) = std::thread::scope(|s| {
        let one = s.spawn(|| run(1, "SELECT COUNT(*) FROM dp02 WHERE mag_i < 20"));
        (run(0, "SELECT COUNT(*) FROM dp02"), one.join().unwrap())
    });
    assert!(!zero.status.success() && !one.status.success());
    let err = String::from_utf8_lossy(&zero.stderr);
    assert!(err.contains("different statement, catalogs or worker count"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_statement_process_0_cannot_plan_fails_everywhere_at_once() {
    let start = std::time::Instant::now();
    let out = starflow_query(&["--processes", "3", "--workers", "1"], "SELECT mag_ii FROM dp02");
    out.clean_error(&["mag_ii", "mag_i"]);
    assert!(start.elapsed().as_secs() < 20, "took {:?}", start.elapsed());
}

#[test]
fn explain_over_several_processes_prints_once() {
    let out =
        starflow_query(&["--processes", "2", "--workers", "1"], "EXPLAIN SELECT COUNT(*) FROM dp02 WHERE mag_i < 20");
    let text = out.ok();
    assert_eq!(text.matches("Scan dp02 on 2 worker(s)").count(), 1, "{text}");
}

/// A host file naming two free loopback ports (the folder lives as long as the guard).
fn two_local_hosts(label: &str) -> (starflow_e2e::Scratch, std::path::PathBuf) {
    let dir = starflow_e2e::Scratch::new(label);
    let ports: Vec<u16> =
        (0..2).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()).collect();
    let hosts = dir.join("hosts.txt");
    std::fs::write(&hosts, format!("# two local processes\n127.0.0.1:{}\n127.0.0.1:{}\n", ports[0], ports[1])).unwrap();
    (dir, hosts)
}
