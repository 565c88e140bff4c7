//! Releases and maintained views (the oracle): after each of a sequence of releases —
//! reprocessed, added and removed tracts, a whole group removed and re-added, a file
//! replaced in place — every view equals the same query run from scratch with
//! `starflow query` on that release; undoing a release restores every view bit for bit;
//! 1 worker, 3 workers and 2 processes agree; rejected ingests change nothing; a restart
//! with the state folder comes back with the same releases and views.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use starflow_catalogs::dp02::{Dp02Options, generate_dp02};
use starflow_catalogs::dp02_release::{ReleaseOptions, generate_release};
use starflow_e2e::{Scratch, ServeProcess, starflow};

const VIEWS: &[(&str, &str)] = &[
    (
        "per_tract",
        "SELECT tract, COUNT(*) AS n, AVG(mag_i) AS mean_i, STDDEV(mag_r) AS sd_r, MIN(mag_g) AS lo, MAX(mag_g) AS hi, SUM(patch) AS sp FROM dp02 WHERE mag_i < 26 GROUP BY tract",
    ),
    (
        "cone_cells",
        "SELECT tract, patch, detect_isPrimary, COUNT(mag_z) AS nz, SUM(mag_z) AS sz FROM dp02 WHERE CONTAINS(POINT(coord_ra, coord_dec), CIRCLE(62, -37, 2)) = 1 GROUP BY tract, patch, detect_isPrimary",
    ),
    ("totals", "SELECT COUNT(*) AS n, MAX(mag_i) AS top, SUM(tract) AS ts FROM dp02"),
    // Global aggregates over no rows are still one row (COUNT 0, the rest NULL).
    (
        "nothing",
        "SELECT COUNT(*) AS n, AVG(mag_i) AS a, STDDEV(mag_r) AS sd, MIN(mag_g) AS lo FROM dp02 WHERE mag_i > 100",
    ),
    // The only view reading mag_y (and the last group-by view by name).
    ("yband", "SELECT tract, AVG(mag_y) AS y, COUNT(mag_y) AS ny FROM dp02 GROUP BY tract"),
    // The views above are group-by views: a release over them alone is fed to them by worker 0
    // itself, as its last view's contribution query ends.
    ("bright", "SELECT objectId, coord_ra, mag_r FROM dp02 WHERE mag_r < 21"),
    ("faintest", "SELECT objectId, mag_r AS r, tract FROM dp02 WHERE mag_r < 30 ORDER BY r DESC, objectId LIMIT 25"),
];

/// The group-by views, first in [`VIEWS`].
const GROUP_BY: usize = 5;

type Views = &'static [(&'static str, &'static str)];

/// The releases, made once per test process: r1 (base), r2 and r3 (generated next releases),
/// r4 = r3 without one tract.
struct Releases {
    _scratch: Scratch,
    dirs: Vec<PathBuf>,
}

fn releases() -> Releases {
    let scratch = Scratch::new("releases");
    let r1 = scratch.join("r1");
    generate_dp02(&r1, &Dp02Options { files: 6, rows: 6_000, seed: 21, row_group_rows: 500 }).unwrap();
    let r2 = scratch.join("r2");
    let opts = ReleaseOptions { seed: 2, replace_frac: 0.34, add_frac: 0.34, remove_frac: 0.17 };
    generate_release(&r1, &r2, &opts).unwrap();
    let r3 = scratch.join("r3");
    generate_release(&r2, &r3, &ReleaseOptions { seed: 3, replace_frac: 0.3, add_frac: 0.2, remove_frac: 0.2 })
        .unwrap();
    let r4 = scratch.join("r4");
    std::fs::create_dir_all(&r4).unwrap();
    let mut files: Vec<_> = std::fs::read_dir(&r3).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    for f in &files[1..] {
        std::fs::hard_link(f, r4.join(f.file_name().unwrap())).unwrap();
    }
    Releases { _scratch: scratch, dirs: vec![r1, r2, r3, r4] }
}

/// Compares CSV results: same header, same rows in any order, floats within 1e-9 relative.
fn same_result(got: &str, want: &str) -> Result<(), String> {
    let split = |t: &str| -> (String, Vec<Vec<String>>) {
        let mut lines = t.lines();
        let header = lines.next().unwrap_or_default().to_string();
        let mut rows: Vec<Vec<String>> = lines.map(|l| l.split(',').map(str::to_string).collect()).collect();
        rows.sort();
        (header, rows)
    };
    let ((gh, g), (wh, w)) = (split(got), split(want));
    if gh != wh || g.len() != w.len() {
        return Err(format!("header or row count differs:\n{gh} ({} rows)\n{wh} ({} rows)", g.len(), w.len()));
    }
    for (a, b) in g.iter().zip(&w) {
        let close = a.len() == b.len()
            && a.iter().zip(b).all(|(x, y)| {
                x == y
                    || matches!((x.parse::<f64>(), y.parse::<f64>()), (Ok(p), Ok(q)) if (p - q).abs() <= 1e-9 * p.abs().max(q.abs()).max(1.0))
            });
        if !close {
            return Err(format!("row differs:\n got {a:?}\nwant {b:?}"));
        }
    }
    Ok(())
}

fn view_csv(server: &ServeProcess, view: &str) -> String {
    server.sql(&format!("SELECT * FROM {view}")).ok().to_string()
}

/// Every view equals its query run from scratch on `dir`.
fn check_views(server: &ServeProcess, views: Views, dir: &Path, when: &str) {
    crate::check_all(when, views, |(name, sql)| {
        let want = starflow(&["query", "--catalog", &format!("dp02={}", dir.display()), "--format", "csv", sql]);
        same_result(&view_csv(server, name), want.ok()).map_err(|e| format!("{when}, view {name}: {e}"))
    });
}

fn ingest(server: &ServeProcess, label: &str, dir: &Path) -> String {
    let out = starflow(&[
        "ingest",
        "--connect",
        server.conn.to_str().unwrap(),
        "--catalog",
        "dp02",
        "--release",
        label,
        dir.to_str().unwrap(),
    ]);
    out.ok().to_string()
}

fn snapshot(server: &ServeProcess, views: Views) -> Vec<String> {
    views.iter().map(|(name, _)| view_csv(server, name)).collect()
}

/// An ingest whose manifest cannot be staged (the temporary file the server reserved for it
/// is replaced by a folder) is rejected, naming the manifest, and leaves every view and
/// release as it was.
fn a_manifest_that_cannot_be_written_is_rejected(server: &ServeProcess, state: &Path, views: Views, dir: &Path) {
    let folder = state.join("catalogs").join("dp02");
    let files = || std::fs::read_dir(&folder).unwrap().map(|e| e.unwrap().path()).collect::<Vec<_>>();
    let next = files().iter().filter(|p| p.extension().is_some_and(|x| x == "json")).count() + 1;
    let prefix = format!("release-{next}.tmp");
    let deadline = Instant::now() + Duration::from_secs(30);
    let reserved = loop {
        if let Some(p) = files().into_iter().find(|p| p.file_name().unwrap().to_string_lossy().starts_with(&prefix)) {
            break p;
        }
        assert!(Instant::now() < deadline, "no reserved manifest {prefix}* in {}", folder.display());
        std::thread::sleep(Duration::from_millis(10));
    };
    std::fs::remove_file(&reserved).unwrap();
    std::fs::create_dir(&reserved).unwrap();
    let before = (snapshot(server, views), server.sql("SHOW RELEASES").ok().to_string());
    let conn = server.conn.to_str().unwrap();
    let out =
        starflow(&["ingest", "--connect", conn, "--catalog", "dp02", "--release", "blocked", dir.to_str().unwrap()]);
    out.clean_error(&["rejected", &format!("dp02 stays at release {}", next - 1), &format!("release-{next}.json")]);
    let after = (snapshot(server, views), server.sql("SHOW RELEASES").ok().to_string());
    assert_eq!(after, before, "views and releases unchanged when the manifest cannot be written");
    std::fs::remove_dir(&reserved).unwrap();
}

fn run_sequence(extra: &[&str], views: Views, releases: &Releases, state: &Path) -> (ServeProcess, Vec<String>) {
    let d = &releases.dirs;
    let catalog = format!("dp02={}", d[0].display());
    let mut args = vec!["--catalog", &catalog, "--state-dir", state.to_str().unwrap()];
    args.extend(extra);
    let server = ServeProcess::start(&args);
    for (name, sql) in views {
        let out = server.repl(&["-c", &format!("CREATE MATERIALIZED VIEW {name} AS {sql}")]);
        assert!(out.ok().contains(&format!("created view {name}")), "{}", out.stdout);
    }
    check_views(&server, views, &d[0], &format!("{extra:?} release 1"));
    let summary = ingest(&server, "r2", &d[1]);
    assert!(summary.contains("release 2 \"r2\" of dp02"), "{summary}");
    let mut names: Vec<&str> = views.iter().map(|(name, _)| *name).collect();
    names.sort();
    assert!(summary.contains(&format!("views updated: {}", names.join(", "))), "{summary}");
    check_views(&server, views, &d[1], &format!("{extra:?} release 2"));
    ingest(&server, "r3", &d[2]);
    check_views(&server, views, &d[2], &format!("{extra:?} release 3"));
    let at_r3 = snapshot(&server, views);
    // A tract (a whole group of per_tract) removed, then re-added: back to r3 bit for bit.
    let summary = ingest(&server, "r4", &d[3]);
    assert!(summary.contains("0 files added, 0 replaced, 1 removed"), "{summary}");
    check_views(&server, views, &d[3], &format!("{extra:?} release 4"));
    ingest(&server, "r5 = r3 again", &d[2]);
    assert_eq!(snapshot(&server, views), at_r3, "{extra:?}: undoing a release restores every view exactly");
    (server, at_r3)
}

#[test]
fn views_follow_releases_on_one_and_several_workers_and_processes() {
    let releases = releases();
    for extra in [&["--workers", "1"][..], &["--workers", "3"], &["--processes", "2", "--workers", "1"]] {
        let state = Scratch::new("state");
        let (server, _) = run_sequence(extra, VIEWS, &releases, state.path());
        drop(server);
    }
}

/// Overwrites bytes of a Parquet file's column chunks, its footer intact: those of `column`,
/// or all of its data.
fn corrupt_pages(path: &Path, column: Option<&str>) {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let mut bytes = std::fs::read(path).unwrap();
    let ranges: Vec<(u64, u64)> = match column {
        None => {
            let footer = u32::from_le_bytes(bytes[bytes.len() - 8..bytes.len() - 4].try_into().unwrap()) as u64;
            vec![(4, bytes.len() as u64 - 12 - footer)]
        }
        Some(name) => {
            let reader = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
            let meta = reader.metadata();
            let mut ranges = vec![];
            for rg in meta.row_groups() {
                let c = rg.columns().iter().find(|c| c.column_path().string() == name).expect("the column");
                ranges.push(c.byte_range());
            }
            ranges
        }
    };
    for (start, len) in ranges {
        bytes[start as usize..(start + len) as usize].fill(0xA5);
    }
    std::fs::write(path, &bytes).unwrap();
}

/// Group-by views alone: each release is fed to them by worker 0 as the last view's
/// contribution query ends (the other views' deltas with it), on one and several workers and
/// processes. A release whose data cannot be read (its footers can) fails in the first query
/// that reads it (per_tract's, computed before any view changes) or, when only the last
/// view's column is unreadable, in that fed query; either way every view and the catalog's
/// releases stay as they were.
#[test]
fn group_by_views_are_fed_where_their_query_ends_and_a_failing_query_changes_none() {
    let releases = releases();
    let group_by = &VIEWS[..GROUP_BY];
    let d = &releases.dirs;
    for extra in [&["--workers", "1"][..], &["--workers", "3"], &["--processes", "2", "--workers", "1"]] {
        let state = Scratch::new("state");
        let (server, at_r3) = run_sequence(extra, group_by, &releases, state.path());
        let conn = server.conn.to_str().unwrap().to_string();
        for (column, view) in [(None, "per_tract"), (Some("mag_y"), "yband")] {
            // r3's files, one of them changed (r1's version) and then damaged.
            let bad = Scratch::new("pages");
            for e in std::fs::read_dir(&d[2]).unwrap() {
                let p = e.unwrap().path();
                std::fs::copy(&p, bad.path().join(p.file_name().unwrap())).unwrap();
            }
            back_to_r1(d, bad.path(), &[]);
            let changed = std::fs::read_dir(bad.path())
                .unwrap()
                .map(|e| e.unwrap().path())
                .find(|p| std::fs::read(p).unwrap() != std::fs::read(d[2].join(p.file_name().unwrap())).unwrap())
                .expect("the changed file");
            corrupt_pages(&changed, column);
            let releases_before = server.sql("SHOW RELEASES").ok().to_string();
            let dir = bad.path().to_str().unwrap();
            let out = starflow(&["ingest", "--connect", &conn, "--catalog", "dp02", "--release", "pages", dir]);
            let name = changed.file_name().unwrap().to_string_lossy().into_owned();
            out.clean_error(&["rejected while updating view", view, &name]);
            assert_eq!(snapshot(&server, group_by), at_r3, "{extra:?} {column:?}: views unchanged after the failure");
            assert_eq!(server.sql("SHOW RELEASES").ok(), releases_before, "{extra:?} {column:?}: releases unchanged");
        }
        a_manifest_that_cannot_be_written_is_rejected(&server, state.path(), group_by, &d[1]);
        // The next release still updates every view exactly.
        ingest(&server, "r6 = r2", &d[1]);
        check_views(&server, group_by, &d[1], &format!("{extra:?} after the failed queries"));
    }
}

/// Rewrites in place one file of `dir` (not one of `skip`) with r1's (`d[0]`) different
/// version of that tract (unlinked first: files are hard links shared with other releases).
fn back_to_r1(d: &[PathBuf], dir: &Path, skip: &[std::ffi::OsString]) {
    let name = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| !skip.contains(n))
        .find(|n| d[0].join(n).exists() && std::fs::read(d[0].join(n)).unwrap() != std::fs::read(dir.join(n)).unwrap())
        .expect("a tract that differs from r1");
    std::fs::remove_file(dir.join(&name)).unwrap();
    std::fs::copy(d[0].join(&name), dir.join(&name)).unwrap();
}

#[test]
fn a_file_replaced_in_place_is_a_replaced_partition() {
    let releases = releases();
    let state = Scratch::new("state");
    let (server, _) = run_sequence(&["--workers", "2"], VIEWS, &releases, state.path());
    // Rewrite one file of r3's folder in place with r1's version of that tract.
    let d = &releases.dirs;
    back_to_r1(d, &d[2], &[]);
    let summary = ingest(&server, "r6", &d[2]);
    assert!(summary.contains("0 files added, 1 replaced, 0 removed"), "{summary}");
    check_views(&server, VIEWS, &d[2], "release 6 (a file replaced in place)");
}

/// A release whose new file has one more column (its views' contribution queries, planned
/// once, must be planned again: the catalog's columns moved) keeps every view equal to the
/// same query from scratch, and so does the next release, planned with the wider columns.
#[test]
fn a_release_that_adds_a_column_keeps_the_views_exact() {
    use arrow_array::{ArrayRef, Float64Array, RecordBatch};
    use parquet::arrow::ArrowWriter;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let releases = releases();
    let state = Scratch::new("state");
    let (server, _) = run_sequence(&["--workers", "2"], VIEWS, &releases, state.path());
    let d = &releases.dirs;
    let wider = Scratch::new("wider");
    let mut names: Vec<_> = std::fs::read_dir(&d[2]).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    for n in &names {
        std::fs::copy(d[2].join(n), wider.path().join(n)).unwrap();
    }
    // The first file gains a column (the others read it as NULL).
    let first = wider.path().join(&names[0]);
    let reader =
        ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&first).unwrap()).unwrap().build().unwrap();
    let batches: Vec<RecordBatch> = reader
        .map(|b| {
            let b = b.unwrap();
            let extra: ArrayRef =
                std::sync::Arc::new(Float64Array::from_iter_values((0..b.num_rows()).map(|i| i as f64)));
            let mut columns: Vec<(String, ArrayRef, bool)> = b
                .schema()
                .fields()
                .iter()
                .zip(b.columns())
                .map(|(f, c)| (f.name().clone(), c.clone(), f.is_nullable()))
                .collect();
            // Nullable: the files without it read it as NULL.
            columns.push(("extra_flux".into(), extra, true));
            RecordBatch::try_from_iter_with_nullable(columns).unwrap()
        })
        .collect();
    std::fs::remove_file(&first).unwrap();
    let mut writer = ArrowWriter::try_new(std::fs::File::create(&first).unwrap(), batches[0].schema(), None).unwrap();
    for b in &batches {
        writer.write(b).unwrap();
    }
    writer.close().unwrap();
    let summary = ingest(&server, "wider", wider.path());
    assert!(summary.contains("0 files added, 1 replaced, 0 removed"), "{summary}");
    check_views(&server, VIEWS, wider.path(), "a release that adds a column");
    // Next, another file goes back to its r1 version.
    back_to_r1(d, wider.path(), &names[..1]);
    let summary = ingest(&server, "wider-2", wider.path());
    assert!(summary.contains("0 files added, 1 replaced, 0 removed"), "{summary}");
    check_views(&server, VIEWS, wider.path(), "the release after it");
}

#[test]
fn rejected_ingests_change_nothing_and_a_restart_comes_back() {
    let releases = releases();
    let state = Scratch::new("state");
    let (server, at_r3) = run_sequence(&["--workers", "2"], VIEWS, &releases, state.path());
    let manifests = |dir: &Path| {
        // (The manifests, not the next one's temporary file the server reserves after an ingest.)
        let mut m: Vec<_> = std::fs::read_dir(dir.join("catalogs").join("dp02"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        m.sort();
        m
    };
    let before = (manifests(state.path()), server.sql("SHOW RELEASES").ok().to_string());
    let bad = Scratch::new("bad");
    // A column changes type.
    let schema_dir = bad.join("schema");
    std::fs::create_dir_all(&schema_dir).unwrap();
    let batch = arrow_array::RecordBatch::try_from_iter([(
        "objectId",
        std::sync::Arc::new(arrow_array::StringArray::from(vec!["a"])) as arrow_array::ArrayRef,
    )])
    .unwrap();
    starflow_e2e::write_parquet(&schema_dir.join("t.parquet"), &batch);
    // An unreadable file among good ones.
    let broken_dir = bad.join("broken");
    std::fs::create_dir_all(&broken_dir).unwrap();
    for e in std::fs::read_dir(&releases.dirs[1]).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, broken_dir.join(p.file_name().unwrap())).unwrap();
    }
    std::fs::write(broken_dir.join("tract_9999.parquet"), b"not parquet at all").unwrap();
    let conn = server.conn.to_str().unwrap().to_string();
    let attempts = [
        ("schema", schema_dir.clone(), vec!["rejected", "dp02 stays at release 5", "objectId"]),
        ("broken", broken_dir.clone(), vec!["rejected", "tract_9999.parquet"]),
        ("r2", releases.dirs[1].clone(), vec!["already has a release labelled \"r2\""]),
    ];
    for (label, dir, needles) in attempts {
        let out =
            starflow(&["ingest", "--connect", &conn, "--catalog", "dp02", "--release", label, dir.to_str().unwrap()]);
        out.clean_error(&needles);
        assert_eq!(snapshot(&server, VIEWS), at_r3, "views unchanged after the rejected ingest {label}");
        assert_eq!(
            (manifests(state.path()), server.sql("SHOW RELEASES").ok().to_string()),
            before,
            "releases unchanged"
        );
    }
    a_manifest_that_cannot_be_written_is_rejected(&server, state.path(), VIEWS, &releases.dirs[1]);
    assert_eq!(manifests(state.path()), before.0, "no manifest left behind");
    // Restart with the state folder alone.
    let mut server = server;
    server.repl(&["-c", "SHUTDOWN"]).ok();
    assert!(server.wait_exit(Duration::from_secs(30)).expect("stops").success());
    let again = ServeProcess::start(&["--state-dir", state.path().to_str().unwrap(), "--workers", "2"]);
    assert_eq!(again.sql("SHOW RELEASES").ok(), before.1, "the same releases after a restart");
    assert_eq!(snapshot(&again, VIEWS), at_r3, "the same views after a restart");
    check_views(&again, VIEWS, &releases.dirs[2], "after a restart");
    let views = again.sql("SHOW VIEWS").ok().to_string();
    assert_eq!(views.lines().count(), VIEWS.len() + 1, "{views}");
}

/// A view's table is written after the ingest's reply: a query right after each ingest waits
/// for it and sees the new release, SHOW VIEWS counts the view's rows, and the state folder
/// keeps the view's current table and the one before (which a running query may still read).
#[test]
fn a_query_right_after_an_ingest_reads_the_new_release() {
    let releases = releases();
    let d = &releases.dirs;
    let state = Scratch::new("state");
    let catalog = format!("dp02={}", d[0].display());
    let server =
        ServeProcess::start(&["--catalog", &catalog, "--state-dir", state.path().to_str().unwrap(), "--workers", "2"]);
    let (name, sql) = VIEWS[0];
    server.repl(&["-c", &format!("CREATE MATERIALIZED VIEW {name} AS {sql}")]).ok();
    let folder = state.path().join("views").join(name);
    for (i, dir) in [&d[1], &d[2], &d[3], &d[1]].into_iter().enumerate() {
        ingest(&server, &format!("again {i}"), dir);
        let want = starflow(&["query", "--catalog", &format!("dp02={}", dir.display()), "--format", "csv", sql]);
        let got = view_csv(&server, name);
        same_result(&got, want.ok()).unwrap_or_else(|e| panic!("after ingest {i}: {e}"));
        let views = server.sql("SHOW VIEWS").ok().to_string();
        let rows = views.lines().nth(1).and_then(|l| l.split(',').nth(4)).unwrap_or_default().to_string();
        assert_eq!(rows, (got.lines().count() - 1).to_string(), "SHOW VIEWS rows after ingest {i}:\n{views}");
        let files = std::fs::read_dir(&folder).unwrap().count();
        assert!((1..=2).contains(&files), "{files} files in {} after ingest {i}", folder.display());
    }
}

#[test]
fn subscribe_streams_each_release_s_changes() {
    use std::io::BufRead;
    let releases = releases();
    let state = Scratch::new("state");
    let catalog = format!("dp02={}", releases.dirs[0].display());
    let server =
        ServeProcess::start(&["--catalog", &catalog, "--state-dir", state.path().to_str().unwrap(), "--workers", "2"]);
    let (name, sql) = VIEWS[0];
    server.repl(&["-c", &format!("CREATE MATERIALIZED VIEW {name} AS {sql}")]).ok();
    let mut child = server
        .repl_command(&["--format", "csv", "-c", &format!("SUBSCRIBE {name}")])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let next = || rx.recv_timeout(Duration::from_secs(60)).expect("a line from SUBSCRIBE");
    let header = next();
    assert!(header.ends_with(",_diff,_release"), "{header}");
    // Rows of the view as "row" → multiplicity, from the subscription's lines.
    let mut contents = std::collections::BTreeMap::<String, i64>::new();
    fn apply(contents: &mut std::collections::BTreeMap<String, i64>, line: &str, release: &str) {
        let fields: Vec<&str> = line.rsplitn(3, ',').collect();
        assert_eq!(fields[0], release, "{line}");
        *contents.entry(fields[2].to_string()).or_default() += fields[1].parse::<i64>().unwrap();
        contents.retain(|_, n| *n != 0);
    }
    let rows_of =
        |csv: &str| csv.lines().skip(1).map(|l| (l.to_string(), 1i64)).collect::<std::collections::BTreeMap<_, _>>();
    let want = rows_of(&view_csv(&server, name));
    while contents.len() < want.len() {
        apply(&mut contents, &next(), "1");
    }
    assert_eq!(contents, want, "the subscription starts from the view's contents");
    ingest(&server, "r2", &releases.dirs[1]);
    let want = rows_of(&view_csv(&server, name));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while contents != want {
        assert!(std::time::Instant::now() < deadline, "the changes never added up to the view at release 2");
        apply(&mut contents, &next(), "2");
    }
    assert!(server.sql("SHOW QUERIES").ok().contains("SUBSCRIBE"), "the subscription is listed");
    child.kill().unwrap();
    child.wait().unwrap();
    let gone =
        starflow_e2e::eventually(Duration::from_secs(20), || server.sql("SHOW QUERIES").ok().lines().count() == 1);
    assert!(gone, "the subscription ends when its client goes");
    // A subscriber whose view is dropped: its subscription ends by itself, cleanly.
    let mut second = server
        .repl_command(&["-c", &format!("SUBSCRIBE {name}")])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first_line = String::new();
    std::io::BufReader::new(second.stdout.as_mut().unwrap()).read_line(&mut first_line).unwrap();
    server.repl(&["-c", &format!("DROP VIEW {name}")]).ok();
    let out = second.wait_with_output().unwrap();
    assert!(out.status.success(), "the subscription ends cleanly when its view is dropped");
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("view {name} was dropped")));
}

#[test]
fn view_shapes_not_maintained_are_refused_clearly() {
    let releases = releases();
    let catalog = format!("dp02={}", releases.dirs[0].display());
    let server = ServeProcess::start(&["--catalog", &catalog, "--workers", "1"]);
    let cases = [
        ("SELECT objectId FROM dp02 LIMIT 5", "LIMIT without ORDER BY"),
        ("SELECT tract, COUNT(*) FROM dp02 GROUP BY tract HAVING COUNT(*) > 3", "HAVING"),
        ("SELECT tract, COUNT(*) / 2 FROM dp02 GROUP BY tract", "neither a GROUP BY key nor an aggregate"),
        ("SELECT DISTINCT tract FROM dp02", "DISTINCT"),
        ("SELECT mag_ii FROM dp02", "mag_i"),
    ];
    for (sql, needle) in cases {
        let out = server.repl(&["-c", &format!("CREATE MATERIALIZED VIEW v AS {sql}")]);
        out.clean_error(&[needle]);
    }
    server.repl(&["-c", "CREATE MATERIALIZED VIEW v AS SELECT tract FROM dp02"]).ok();
    server.repl(&["-c", "CREATE MATERIALIZED VIEW v AS SELECT patch FROM dp02"]).clean_error(&["already"]);
    server.repl(&["-c", "DROP VIEW v"]).ok();
    server.repl(&["-c", "SELECT * FROM v"]).clean_error(&["v"]);
    assert_eq!(server.sql("SHOW VIEWS").ok().lines().count(), 1, "no view left");
}

/// The join view's expected rows, computed from each side's rows read with `starflow query`
/// (the engine has no join: the test joins in Rust).
fn expected_join(a: &Path, b: &Path) -> Vec<String> {
    let side = |name: &str, dir: &Path, sql: &str| -> Vec<Vec<String>> {
        let out = starflow(&["query", "--catalog", &format!("{name}={}", dir.display()), "--format", "csv", sql]);
        out.ok().lines().skip(1).map(|l| l.split(',').map(str::to_string).collect()).collect()
    };
    let left = side("dp02", a, "SELECT objectId, mag_r FROM dp02 WHERE mag_r < 25");
    let right = side("other", b, "SELECT objectId, mag_i, tract FROM other WHERE mag_i > 20");
    let mut by_id: std::collections::HashMap<&str, Vec<&Vec<String>>> = Default::default();
    for r in &right {
        by_id.entry(r[0].as_str()).or_default().push(r);
    }
    let mut rows: Vec<String> = left
        .iter()
        .flat_map(|l| {
            by_id.get(l[0].as_str()).into_iter().flatten().map(move |r| format!("{},{},{},{}", l[0], l[1], r[1], r[2]))
        })
        .collect();
    rows.sort();
    rows
}

#[test]
fn a_join_view_follows_releases_of_both_catalogs() {
    let releases = releases();
    let d = &releases.dirs;
    let other = Scratch::new("other");
    let (b1, b2) = (other.join("b1"), other.join("b2"));
    // Same tracts and object ids as dp02's first release, other magnitudes.
    generate_dp02(&b1, &Dp02Options { files: 6, rows: 6_000, seed: 21, row_group_rows: 500 }).unwrap();
    generate_release(&b1, &b2, &ReleaseOptions { seed: 9, replace_frac: 0.5, add_frac: 0.0, remove_frac: 0.17 })
        .unwrap();
    let state = Scratch::new("state");
    let (ca, cb) = (format!("dp02={}", d[0].display()), format!("other={}", b1.display()));
    let server = ServeProcess::start(&[
        "--catalog",
        &ca,
        "--catalog",
        &cb,
        "--state-dir",
        state.path().to_str().unwrap(),
        "--processes",
        "2",
        "--workers",
        "1",
    ]);
    let sql = "SELECT a.objectId, a.mag_r, b.mag_i AS other_i, b.tract FROM dp02 a JOIN other b ON a.objectId = b.objectId WHERE a.mag_r < 25 AND b.mag_i > 20";
    server.repl(&["-c", &format!("CREATE MATERIALIZED VIEW matched AS {sql}")]).ok();
    let check = |a: &Path, b: &Path, when: &str| {
        let got = view_csv(&server, "matched");
        let mut rows: Vec<String> = got.lines().skip(1).map(str::to_string).collect();
        rows.sort();
        let want = expected_join(a, b);
        assert!(!want.is_empty(), "{when}: the join is not empty");
        assert_eq!(got.lines().next(), Some("objectId,mag_r,other_i,tract"), "{when}");
        assert_eq!(rows, want, "{when}: the join view equals the join of both sides' rows");
    };
    check(&d[0], &b1, "at the start");
    let out = starflow(&[
        "ingest",
        "--connect",
        server.conn.to_str().unwrap(),
        "--catalog",
        "other",
        "--release",
        "b2",
        b2.to_str().unwrap(),
    ]);
    assert!(out.ok().contains("views updated: matched"), "{}", out.stdout);
    check(&d[0], &b2, "after a release of the second catalog");
    ingest(&server, "r2", &d[1]);
    check(&d[1], &b2, "after a release of the first catalog");
    ingest(&server, "r3", &d[2]);
    check(&d[2], &b2, "after another release of the first catalog");
}
