//! The status page (`GET /status`, the same token as every request, also accepted as
//! `?token=` so that a browser can open it): running queries with their progress, the
//! processes and their memory and CPU, the views, and the reports of the last queries
//! (`GET /report/{id}`). Refreshes itself every few seconds; no scripts.

use std::time::Duration;

use anyhow::{Result, bail};
use arrow_array::RecordBatch;
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use starflow_dataflow::{CatalogSet, Plan, QueryEvent, Waited};

use super::execute::{State, show_queries, show_views};
use crate::report::escape;

/// How long the page waits for the workers to measure themselves.
const WORKERS_TIMEOUT: Duration = Duration::from_secs(5);

/// The page, for a client that holds `token` (put in the report links).
pub fn page(state: &State, token: &str) -> Result<String> {
    let queries = show_queries(state)?;
    let workers = workers(state)?;
    let views = show_views(&state.store.lock().unwrap_or_else(|p| p.into_inner()))?;
    let reports: Vec<String> = state
        .reports
        .lock()
        .expect("reports lock")
        .iter()
        .rev()
        .map(|(id, r)| {
            format!(
                "<tr><td><a href=\"/report/{id}?token={}\">{id}</a></td><td>{}</td><td>{:.3} s</td><td>{}</td><td><code>{}</code></td></tr>",
                escape(token),
                escape(&r.started),
                r.seconds,
                r.rows_out,
                escape(&r.statement)
            )
        })
        .collect();
    let reports = if reports.is_empty() {
        "<p>No query has finished yet.</p>".to_string()
    } else {
        format!(
            "<table><tr><th>query</th><th>started</th><th>time</th><th>rows out</th><th>statement</th></tr>{}</table>",
            reports.concat()
        )
    };
    Ok(format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="3">
<title>starflow server</title><style>{CSS}</style></head><body>
<h1>starflow server</h1><p>{} process(es) × {} worker thread(s) · refreshed every 3 s</p>
<h2 id="queries">Running queries</h2>{}
<h2 id="workers">Processes</h2>{}
<h2 id="views">Views</h2>{}
<h2 id="reports">Reports of the last queries</h2>{reports}
</body></html>"#,
        state.processes,
        state.threads,
        table(&queries, "No query is running."),
        table(&workers, "No process answered."),
        table(&views, "No view is defined."),
    ))
}

/// The report of query `id`, if the server still keeps it.
pub fn report(state: &State, id: u64) -> Option<String> {
    let reports = state.reports.lock().expect("reports lock");
    reports.iter().find(|(i, _)| *i == id).map(|(_, r)| crate::report::render(r))
}

/// `SHOW WORKERS`: every process measures itself.
fn workers(state: &State) -> Result<RecordBatch> {
    let handle = state.server.submit(Plan::Workers, &CatalogSet::new());
    let mut batches = Vec::new();
    loop {
        match handle.wait_event(WORKERS_TIMEOUT) {
            Waited::Event(QueryEvent::Batch(b)) => batches.push(b),
            Waited::Event(QueryEvent::Done(result)) => {
                result?;
                break;
            }
            Waited::Timeout => {
                handle.cancel();
                bail!("the workers did not answer within {} s", WORKERS_TIMEOUT.as_secs());
            }
            Waited::Closed => bail!("the server's workers stopped"),
        }
    }
    let schema = starflow_dataflow::system::workers_schema();
    Ok(arrow_select::concat::concat_batches(&schema, &batches)?)
}

/// A result as an HTML table (or `empty` when it has no rows).
fn table(batch: &RecordBatch, empty: &str) -> String {
    if batch.num_rows() == 0 {
        return format!("<p>{empty}</p>");
    }
    let options = FormatOptions::default().with_null("");
    let formatters: Vec<_> =
        batch.columns().iter().filter_map(|c| ArrayFormatter::try_new(c.as_ref(), &options).ok()).collect();
    let mut out = String::from("<table><tr>");
    for f in batch.schema().fields() {
        out += &format!("<th>{}</th>", escape(f.name()));
    }
    out += "</tr>";
    for row in 0..batch.num_rows() {
        out += "<tr>";
        for f in &formatters {
            out += &format!("<td>{}</td>", escape(&f.value(row).to_string()));
        }
        out += "</tr>";
    }
    out + "</table>"
}

const CSS: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:2rem;color:#1f2328}\
table{border-collapse:collapse;margin:.5rem 0 1.5rem}th,td{border-bottom:1px solid #d0d7de;padding:.3rem .7rem;text-align:left;font-size:.9rem}\
th{background:#f6f8fa}code{font-size:.85rem}h2{margin-top:1.5rem;font-size:1.15rem}";
