//! The long-running server core (`starflow_dataflow::Server`): queries submitted one after
//! another and at once give the answers `run_query` gives, a failing query leaves the server
//! serving, a cancelled query ends as cancelled, and shutdown waits for the workers.

use std::time::Duration;

use starflow_dataflow::{PlanOptions, QueryEvent, QueryHandle, RunError, Server, plan_sql};
use starflow_e2e::{catalogs, rows, rows_of, small_partitions, sorted};
use starflow_operators::Operators;

fn plan(sql: &str) -> starflow_dataflow::Plan {
    plan_sql(sql, &catalogs(), &PlanOptions::default()).expect("plans").plan
}

/// Collects a query's batches until its `Done`; fails after 60 s without one.
fn collect(handle: &QueryHandle) -> Result<Vec<arrow_array::RecordBatch>, RunError> {
    let mut batches = Vec::new();
    loop {
        match handle.next_event_timeout(Duration::from_secs(60)).expect("an event within 60 s") {
            QueryEvent::Batch(b) => batches.push(b),
            QueryEvent::Done(result) => return result.map(|_| batches),
        }
    }
}

const QUERIES: &[&str] = &[
    "SELECT COUNT(*) FROM dp02 WHERE mag_i < 26",
    "SELECT tract, COUNT(*), AVG(mag_i), STDDEV(mag_g) FROM dp02 GROUP BY tract",
    "SELECT objectId, mag_r FROM dp02 ORDER BY mag_r, objectId LIMIT 20",
    "SELECT * FROM dp02 WHERE mag_i < 26 LIMIT 4",
    "SELECT objectId FROM dp02 WHERE CONTAINS(POINT(coord_ra, coord_dec), CIRCLE(62, -37, 0.5)) = 1",
];

#[test]
fn queries_one_after_another_and_at_once_match_run_query() {
    for workers in [1, 3] {
        let server = Server::start(workers, None, Operators).expect("server starts");
        for sql in QUERIES {
            let got = collect(&server.submit(plan(sql), &catalogs())).expect("query succeeds");
            assert_eq!(sorted(rows_of(&got)), sorted(rows(sql, 2)), "{sql} on {workers} workers");
        }
        // All at once: the dataflows run side by side.
        let handles: Vec<_> = QUERIES.iter().map(|sql| server.submit(plan(sql), &catalogs())).collect();
        for (sql, handle) in QUERIES.iter().zip(&handles) {
            let got = collect(handle).expect("query succeeds");
            assert_eq!(sorted(rows_of(&got)), sorted(rows(sql, 2)), "concurrent {sql} on {workers} workers");
        }
        server.shutdown().expect("clean shutdown");
    }
}

#[test]
fn a_failing_query_leaves_the_server_serving() {
    let server = Server::start(2, None, Operators).expect("server starts");
    let failing = server.submit(plan("SELECT objectId * 1000000000000 * 1000000000000 FROM dp02"), &catalogs());
    let err = collect(&failing).expect_err("overflow fails");
    assert!(err.to_string().contains("overflow"), "{err}");
    let good = collect(&server.submit(plan("SELECT COUNT(*) FROM dp02"), &catalogs())).expect("next query works");
    assert_eq!(rows_of(&good), rows("SELECT COUNT(*) FROM dp02", 1));
    server.shutdown().expect("clean shutdown");
}

#[test]
fn a_cancelled_query_ends_as_cancelled() {
    let server = Server::start(2, None, Operators).expect("server starts");
    // Small batches: the scan needs dozens of steps, far more than sequencing the cancel takes.
    let slow = plan_sql("SELECT objectId, mag_i FROM dp02 ORDER BY mag_i", &catalogs(), &small_partitions()).unwrap();
    let handle = server.submit(slow.plan, &catalogs());
    handle.cancel();
    match collect(&handle) {
        Err(RunError::Cancelled) => {}
        other => panic!("expected a cancelled query, got {:?}", other.map(|b| rows_of(&b).len())),
    }
    let after = collect(&server.submit(plan("SELECT COUNT(*) FROM dp02"), &catalogs())).expect("server still serves");
    assert_eq!(rows_of(&after), rows("SELECT COUNT(*) FROM dp02", 1));
    server.shutdown().expect("clean shutdown");
}

#[test]
fn a_two_process_server_matches_run_query() {
    use starflow_dataflow::{ClusterOptions, connect};
    let ports: Vec<u16> =
        (0..2).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()).collect();
    let addresses: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let options = |process| ClusterOptions {
        process,
        addresses: addresses.clone(),
        connect_timeout: Duration::from_secs(30),
        fingerprint: 7,
    };
    // Process 1 serves until process 0 shuts the cluster down (timely needs the same thread
    // count in every process).
    let (o0, o1) = (options(0), options(1));
    let follower = std::thread::spawn(move || {
        let connected = connect(&o1, None).expect("process 1 connects");
        let server = Server::start(2, Some(connected), Operators).expect("process 1 starts");
        server.join()
    });
    let connected = connect(&o0, Some(&[])).expect("process 0 connects");
    let server = Server::start(2, Some(connected), Operators).expect("process 0 starts");
    for sql in QUERIES {
        let got = collect(&server.submit(plan(sql), &catalogs())).expect("query succeeds");
        assert_eq!(sorted(rows_of(&got)), sorted(rows(sql, 2)), "{sql} on 2 processes");
    }
    server.shutdown().expect("process 0 shuts down");
    follower.join().expect("process 1 thread").expect("process 1 shuts down");
}

/// A feeding query changes its view only once its gate opens: shut, or its decision dropped,
/// the query ends as cancelled and the view keeps its contents; opened after the query has
/// ended (worker 0 holds its records meanwhile), the view gets them.
#[test]
fn a_feeding_query_changes_its_view_only_through_an_open_gate() {
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;
    use starflow_dataflow::view::feed::{Contribution, Feed, ViewUpdate};
    use starflow_dataflow::view::{Datum, Row, ViewKind, ViewRecord};

    /// Each row's objectId, as a top-k candidate (the id is also its sort key).
    struct Ids(Vec<ViewRecord>);
    impl Contribution for Ids {
        fn add(&mut self, batch: &arrow_array::RecordBatch) -> Result<(), String> {
            let ids = batch.column(0).as_primitive::<Int64Type>();
            self.0.extend(ids.values().iter().map(|&id| (Row::new(), (1, vec![Datum::Int(id), Datum::Int(id)]))));
            Ok(())
        }
        fn finish(self: Box<Self>) -> Vec<ViewRecord> {
            self.0
        }
    }
    let server = Server::start(2, None, Operators).expect("server starts");
    let sql = "SELECT objectId FROM dp02";
    let mut ids: Vec<i64> = collect(&server.submit(plan(sql), &catalogs()))
        .expect("query succeeds")
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
        .collect();
    ids.sort_unstable_by(|a, b| b.cmp(a));
    let top: Vec<Row> = ids[..3].iter().map(|&id| vec![Datum::Int(id)]).collect();
    let (view, snapshot) = server.create_view("top", ViewKind::TopK { k: 3, width: 1, keys: vec![(true, false)] }, 1);
    let contents = || snapshot.with_rows(|rows| rows.keys().cloned().collect::<Vec<Row>>());
    // What each attempt gave (checked after the shutdown: a failed assertion with the server
    // running would leave its workers waiting).
    let mut seen = Vec::new();
    for (time, decide) in [Some(false), None, Some(true)].into_iter().enumerate() {
        let (records, fed) = std::sync::mpsc::channel();
        let (gate, decision) = server.gate();
        let own = ViewUpdate { view, time: time as u64 + 1, records: vec![] };
        let feed = Feed { contribution: Box::new(Ids(vec![])), own, others: vec![], records, gate };
        let handle = server.submit_feeding(plan(sql), &catalogs(), feed);
        // Decided late: the query has most likely ended, its records held on worker 0.
        std::thread::sleep(Duration::from_millis(300));
        match decide {
            Some(open) => decision.decide(open),
            None => drop(decision),
        }
        let result = collect(&handle).map(|batches| batches.len());
        let mut got = contents();
        got.sort_by(|a, b| b.cmp(a));
        seen.push((decide, result, fed.try_recv().map(|r| r.len()).ok(), got));
    }
    server.shutdown().expect("clean shutdown");
    for (decide, result, records, got) in seen {
        if decide == Some(true) {
            assert_eq!(result.expect("an open gate: the query succeeds"), 0, "a feeding query returns no rows");
            assert_eq!(records, Some(ids.len()), "its records are handed back");
            assert_eq!(got, top, "the view has the records");
        } else {
            assert!(matches!(result, Err(RunError::Cancelled)), "{decide:?}: {result:?}");
            assert_eq!(records, None, "{decide:?}: no records handed back");
            assert!(got.is_empty(), "{decide:?}: the view is unchanged");
        }
    }
}
