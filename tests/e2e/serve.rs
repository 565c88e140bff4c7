//! `starflow serve` + `starflow repl`: a real server (one process, and several on loopback),
//! clients attached to it, answers checked against `starflow query`; concurrent, stuck,
//! killed and cancelling clients; a wrong token; a bad statement then a good one; SIGTERM.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::Duration;

use starflow_e2e::cli::{catalog_args, starflow_query};
use starflow_e2e::{ServeProcess, big_catalog, dp02, eventually};

/// (sort the lines before comparing, SQL)
const QUERIES: &[(bool, &str)] = &[
    (true, "SELECT objectId, coord_ra, mag_i FROM dp02 WHERE mag_i < 23 AND coord_dec > -35"),
    (false, "SELECT COUNT(*) FROM dp02 WHERE mag_i < 26"),
    (
        true,
        "SELECT tract, patch, COUNT(*), AVG(mag_g - mag_r), STDDEV(mag_i), MIN(mag_i) FROM dp02 GROUP BY tract, patch",
    ),
    (false, "SELECT objectId, mag_r FROM dp02 ORDER BY mag_r, objectId LIMIT 30"),
    (false, "SELECT * FROM dp02 WHERE mag_i < 26 LIMIT 9"),
    (true, "SELECT objectId FROM dp02 WHERE CONTAINS(POINT(coord_ra, coord_dec), CIRCLE(62, -37, 0.5)) = 1"),
    (false, "SELECT id, x FROM nulls ORDER BY id"),
];

use starflow_e2e::output_lines as lines;

fn expected(sql: &str, sort: bool) -> Vec<String> {
    lines(starflow_query(&["--workers", "1", "--format", "csv"], sql).ok(), sort)
}

fn serve(extra: &[&str]) -> ServeProcess {
    let mut args = catalog_args();
    args.extend(extra.iter().map(|s| s.to_string()));
    ServeProcess::start(&args)
}

fn shut_down(mut server: ServeProcess) {
    let out = server.repl(&["-c", "SHUTDOWN"]);
    assert!(out.ok().contains("shutting down"), "{}", out.stdout);
    let status = server.wait_exit(Duration::from_secs(30)).expect("server exits after SHUTDOWN");
    assert!(status.success(), "server exit: {status}\n{}", server.log());
    assert!(!server.conn.exists(), "the connection file is removed at shutdown");
}

#[test]
fn statements_through_a_server_match_starflow_query() {
    for extra in [&["--workers", "2"][..], &["--processes", "2", "--workers", "1"]] {
        let server = serve(extra);
        let mode = std::fs::metadata(&server.conn).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "connection file mode");
        crate::check_all("served", QUERIES, |(sort, sql)| {
            let out = server.sql(sql);
            if out.code != Some(0) {
                return Err(format!("{extra:?} {sql}: failed: {}", out.stderr));
            }
            if lines(&out.stdout, *sort) != expected(sql, *sort) {
                return Err(format!("{extra:?} {sql}: differs from starflow query:\n{}", out.stdout));
            }
            Ok(())
        });
        // Several statements in one -c, and a script on stdin.
        let out = server.repl(&["--format", "csv", "-c", "SELECT COUNT(*) FROM dp02; SELECT COUNT(*) FROM nulls;"]);
        assert_eq!(out.ok(), format!("COUNT(*)\n{}\nCOUNT(*)\n9\n", dp02().rows.len()));
        let mut child =
            server.repl_command(&["--format", "csv"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
        std::io::Write::write_all(
            child.stdin.as_mut().unwrap(),
            b"-- a script\nSELECT COUNT(*)\n  FROM nulls\n  WHERE x IS NULL;\n\\timing off\nSELECT MAX(id) FROM nulls\n",
        )
        .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout), "COUNT(*)\n5\ntiming is off\nMAX(id)\n9\n");

        let processes: usize = if extra.contains(&"--processes") { 2 } else { 1 };
        let workers = server.sql("SHOW WORKERS");
        let rows: Vec<&str> = workers.ok().lines().skip(1).collect();
        assert_eq!(rows.len(), processes, "{}", workers.stdout);
        for (i, row) in rows.iter().enumerate() {
            let f: Vec<&str> = row.split(',').collect();
            assert_eq!(f[0], i.to_string(), "{row}");
            assert_eq!(f[3], if processes == 2 { "1" } else { "2" }, "threads: {row}");
            assert!(f[4].parse::<f64>().unwrap() > 1.0, "rss: {row}");
        }
        shut_down(server);
    }
}

#[test]
fn catalogs_are_listed_and_described() {
    let server = serve(&["--workers", "1"]);
    let out = server.sql("SHOW CATALOGS");
    let fixture = dp02();
    let dp02_line = out.ok().lines().find(|l| l.starts_with("dp02,")).expect("dp02 listed").to_string();
    assert!(dp02_line.starts_with(&format!("dp02,{},{},16,", fixture.files.len(), fixture.rows.len())), "{dp02_line}");
    assert!(out.stdout.lines().any(|l| l.starts_with("nulls,2,9,2,")), "{}", out.stdout);
    let out = server.sql("DESCRIBE dp02;");
    let text = out.ok();
    assert!(text.starts_with(&format!(
        "dp02: {} rows in {} files, 16 columns",
        fixture.rows.len(),
        fixture.files.len()
    )));
    assert!(text.contains("objectId,Int64,false\n") && text.contains("mag_i,Float32,true\n"), "{text}");
    server.sql("DESCRIBE dp2").clean_error(&["dp2", "dp02"]);
    let out = server.sql("EXPLAIN SELECT COUNT(*) FROM dp02 WHERE mag_i < 20");
    assert!(out.ok().contains("Scan dp02 on 1 worker(s)"), "{}", out.stdout);
}

#[test]
fn concurrent_clients_get_their_own_answers() {
    let server = serve(&["--workers", "2"]);
    let expected: Vec<Vec<String>> = QUERIES.iter().map(|(sort, sql)| expected(sql, *sort)).collect();
    std::thread::scope(|scope| {
        for client in 0..6 {
            let (server, expected) = (&server, &expected);
            scope.spawn(move || {
                for round in 0..3 {
                    let i = (client + round) % QUERIES.len();
                    let (sort, sql) = QUERIES[i];
                    let out = server.sql(sql);
                    assert_eq!(lines(out.ok(), sort), expected[i], "client {client} round {round}: {sql}");
                }
            });
        }
    });
}

#[test]
fn a_stuck_then_killed_client_does_not_stall_others() {
    let server = serve_big(&["--workers", "2"]);
    // A client that asks for every row of the big catalog and never reads them.
    let mut stuck =
        server.repl_command(&["--format", "csv", "-c", "SELECT * FROM big"]).stdout(Stdio::piped()).spawn().unwrap();
    let mut first = [0u8; 16];
    stuck.stdout.as_mut().unwrap().read_exact(&mut first).unwrap();
    for (sort, sql) in &QUERIES[..3] {
        assert_eq!(lines(server.sql(sql).ok(), *sort), expected(sql, *sort), "while a client is stuck: {sql}");
    }
    let listed = server.sql("SHOW QUERIES").ok().to_string();
    assert!(listed.contains("SELECT * FROM big"), "the stuck client's statement is still running:\n{listed}");
    stuck.kill().unwrap();
    stuck.wait().unwrap();
    let idle = eventually(Duration::from_secs(20), || server.sql("SHOW QUERIES").ok().lines().count() == 1);
    assert!(idle, "the killed client's query is still listed:\n{}", server.sql("SHOW QUERIES").stdout);
    let (sort, sql) = QUERIES[2];
    assert_eq!(lines(server.sql(sql).ok(), sort), expected(sql, sort));
}

/// A query that runs for seconds on the big catalog in a debug build.
const HEAVY: &str = "SELECT objectId, COUNT(*), AVG(mag_i), STDDEV(mag_r) FROM big GROUP BY objectId ORDER BY objectId";

fn serve_big(extra: &[&str]) -> ServeProcess {
    let mut args = catalog_args();
    args.extend(["--catalog".to_string(), format!("big={}", big_catalog().display())]);
    args.extend(extra.iter().map(|s| s.to_string()));
    ServeProcess::start(&args)
}

/// A client running `HEAVY`, once the server lists the query as running.
fn start_heavy(server: &ServeProcess) -> std::process::Child {
    let client = server
        .repl_command(&["--format", "csv", "-c", HEAVY])
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let running = eventually(Duration::from_secs(30), || server.sql("SHOW QUERIES").ok().contains("GROUP BY objectId"));
    assert!(running, "the heavy query never showed in SHOW QUERIES");
    client
}

#[test]
fn ctrl_c_cancels_the_running_query_and_the_server_keeps_serving() {
    let server = serve_big(&["--workers", "2"]);
    let client = start_heavy(&server);
    // What a terminal sends on Ctrl-C.
    let status = std::process::Command::new("kill").args(["-INT", &client.id().to_string()]).status().unwrap();
    assert!(status.success());
    let out = client.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cancelling query") && stderr.contains("error: query cancelled"), "{stderr}");
    assert!(server.sql("SHOW QUERIES").ok().lines().count() == 1, "nothing left running");
    let (sort, sql) = QUERIES[1];
    assert_eq!(lines(server.sql(sql).ok(), sort), expected(sql, sort), "the server still answers");
}

#[test]
fn a_wrong_token_or_a_readable_connection_file_is_refused() {
    let server = serve(&["--workers", "1"]);
    let text = std::fs::read_to_string(&server.conn).unwrap();
    let info: serde_json::Value = serde_json::from_str(&text).unwrap();
    let token = info["token"].as_str().unwrap();
    let forged = server.scratch().join("forged.json");
    std::fs::write(&forged, text.replace(token, &"0".repeat(token.len()))).unwrap();
    std::fs::set_permissions(&forged, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out =
        starflow_e2e::starflow(&["repl", "--connect", forged.to_str().unwrap(), "-c", "SELECT COUNT(*) FROM dp02"]);
    out.clean_error(&["refused", "token"]);
    // A raw request without any token.
    let address = format!("{}:{}", info["host"].as_str().unwrap(), info["port"]);
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    std::io::Write::write_all(
        &mut stream,
        b"POST /statement HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\nConnection: close\r\n\r\nSHUTDOWN",
    )
    .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 401"), "{reply}");
    // The server is still there and still serving.
    assert_eq!(lines(server.sql("SELECT COUNT(*) FROM nulls").ok(), false), ["COUNT(*)", "9"]);
    std::fs::set_permissions(&forged, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = starflow_e2e::starflow(&["repl", "--connect", forged.to_str().unwrap(), "-c", "SELECT 1"]);
    out.clean_error(&["readable by other users"]);
}

#[test]
fn a_bad_statement_fails_alone_and_the_next_one_works() {
    let server = serve(&["--workers", "2"]);
    let out = server.repl(&["-c", "SELEC COUNT(*) FROM dp02", "-c", "SELECT COUNT(*) FROM nulls"]);
    out.clean_error(&["SELEC"]);
    assert!(out.stdout.is_empty(), "stops at the first failing statement: {}", out.stdout);
    for bad in ["SELECT mag_ii FROM dp02", "SELECT * FROM nope", "COPY dp02 TO 'x'", "DESCRIBE", "SHOW"] {
        let out = server.sql(bad);
        assert_eq!(out.code, Some(1), "{bad:?}: {}", out.stdout);
        assert!(out.stderr.starts_with("error:") && !out.stderr.contains("panicked"), "{bad:?}: {}", out.stderr);
    }
    assert_eq!(lines(server.sql("SELECT COUNT(*) FROM nulls").ok(), false), ["COUNT(*)", "9"]);
}

#[test]
fn copy_writes_the_whole_result_on_the_server() {
    let server = serve(&["--workers", "2"]);
    let path = server.scratch().join("bright.csv");
    let sql = "SELECT objectId, mag_r FROM dp02 WHERE mag_r < 22";
    let out = server.repl(&["-c", &format!("COPY ({sql}) TO '{}'", path.display())]);
    let want = expected(sql, true);
    assert!(out.ok().contains(&format!("COPY {} rows to {}", want.len() - 1, path.display())), "{}", out.stdout);
    assert_eq!(lines(&std::fs::read_to_string(&path).unwrap(), true), want);
    // The table view shows the first rows and says how many there are.
    let out = server.repl(&["--format", "table", "--max-rows", "5", "-c", sql]);
    assert!(out.ok().contains(&format!("(5 of {} rows shown", want.len() - 1)), "{}", out.stdout);
}

#[test]
fn sigterm_stops_every_process_and_tells_running_clients() {
    let mut server = serve_big(&["--processes", "2", "--workers", "1"]);
    let client = start_heavy(&server);
    server.signal("TERM");
    let out = client.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("shutting down"), "{stderr}");
    let status = server.wait_exit(Duration::from_secs(30)).expect("the server exits after SIGTERM");
    assert!(status.success(), "exit status {status}:\n{}", server.log());
    assert!(server.log().contains("starflow serve: stopped"), "{}", server.log());
    assert!(!server.conn.exists(), "the connection file is removed");
}
