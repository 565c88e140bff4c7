//! Logs and traces: which events and spans reach stderr is set by `--log-level` (or `RUST_LOG`,
//! or `-v`, which wins over `RUST_LOG`), with the directive syntax `warn` / `info,starflow_dataflow=debug`; with
//! `--trace-out FILE.json` every span at debug level or above (plan, query, install, scan,
//! exchange, sink, …) is also written as a Chrome trace (`chrome://tracing`, Perfetto), one lane
//! per thread, fields as arguments. A process other than process 0 writes `FILE.<rank>.json`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::{Context as LayerContext, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// Most trace events kept; later ones are counted, not kept.
const MAX_EVENTS: usize = 200_000;

/// This process's rank, for the trace file's name (set once the topology is known).
static RANK: AtomicUsize = AtomicUsize::new(0);

/// Records this process's rank (process 0 writes the trace file named on the command line).
pub fn set_rank(rank: usize) {
    RANK.store(rank, Ordering::Relaxed);
}

/// Installs the global subscriber. The returned guard writes the trace file when dropped.
pub fn init(log_level: Option<&str>, verbose: u8, trace_out: Option<&Path>) -> Result<TraceGuard> {
    let env = std::env::var("RUST_LOG").ok().filter(|s| !s.trim().is_empty());
    let directives = match (log_level, verbose, env) {
        (Some(level), _, _) => level.to_string(),
        (None, 1, _) => "debug".into(),
        (None, 2.., _) => "trace".into(),
        (None, 0, Some(env)) => env,
        (None, 0, None) => "warn".into(),
    };
    let targets: Targets = directives.parse().map_err(|e| {
        anyhow::anyhow!("--log-level/RUST_LOG: \"{directives}\" is not a level or a list of target=level ({e})")
    })?;
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_filter(targets);
    let chrome = trace_out.map(|path| Chrome::new(path.to_path_buf()));
    let chrome_layer = chrome.clone().map(|c| {
        c.with_filter(Targets::new().with_default(LevelFilter::WARN).with_targets([
            ("starflow", Level::DEBUG),
            ("starflow_catalogs", Level::DEBUG),
            ("starflow_dataflow", Level::DEBUG),
            ("starflow_operators", Level::DEBUG),
        ]))
    });
    tracing_subscriber::registry().with(fmt).with(chrome_layer).init();
    Ok(TraceGuard { chrome })
}

/// Writes the Chrome trace (if any) when dropped.
pub struct TraceGuard {
    chrome: Option<Chrome>,
}

impl Drop for TraceGuard {
    fn drop(&mut self) {
        if let Some(c) = &self.chrome
            && let Err(e) = c.write()
        {
            eprintln!("error: {e:#}");
        }
    }
}

/// A layer that keeps every closed span as a Chrome "complete" event.
#[derive(Clone)]
struct Chrome {
    inner: Arc<Mutex<Trace>>,
    start: Instant,
    path: PathBuf,
}

#[derive(Default)]
struct Trace {
    /// Events, their `pid` filled in when written.
    events: Vec<serde_json::Value>,
    dropped: u64,
    /// Thread → (lane number, thread name).
    threads: HashMap<std::thread::ThreadId, (usize, String)>,
}

/// What a span carries until it closes.
struct Open {
    start_us: f64,
    tid: usize,
    args: serde_json::Map<String, serde_json::Value>,
}

impl Chrome {
    fn new(path: PathBuf) -> Self {
        Self { inner: Arc::default(), start: Instant::now(), path }
    }

    fn now_us(&self) -> f64 {
        self.start.elapsed().as_nanos() as f64 / 1e3
    }

    fn lane(&self) -> usize {
        let t = std::thread::current();
        let mut trace = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let n = trace.threads.len();
        trace.threads.entry(t.id()).or_insert_with(|| (n, t.name().unwrap_or("thread").to_string())).0
    }

    fn push(&self, event: serde_json::Value) {
        let mut trace = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if trace.events.len() < MAX_EVENTS {
            trace.events.push(event);
        } else {
            trace.dropped += 1;
        }
    }

    /// The file this process writes.
    fn file(&self) -> PathBuf {
        match RANK.load(Ordering::Relaxed) {
            0 => self.path.clone(),
            rank => self.path.with_extension(format!("{rank}.json")),
        }
    }

    fn write(&self) -> Result<()> {
        let mut trace = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let pid = RANK.load(Ordering::Relaxed);
        let meta = |name: &str, tid: usize, value: String| serde_json::json!({ "name": name, "ph": "M", "pid": pid, "tid": tid, "args": { "name": value } });
        let mut lines = vec![meta("process_name", 0, format!("starflow process {pid}")).to_string()];
        let mut threads: Vec<_> = trace.threads.values().cloned().collect();
        threads.sort();
        lines.extend(threads.into_iter().map(|(tid, name)| meta("thread_name", tid, name).to_string()));
        for e in &mut trace.events {
            e["pid"] = pid.into();
            lines.push(e.to_string());
        }
        let out = format!("[\n{}\n]\n", lines.join(",\n"));
        let path = self.file();
        std::fs::write(&path, out).with_context(|| format!("cannot write the trace {}", path.display()))?;
        if trace.dropped > 0 {
            eprintln!("warning: the trace kept its first {MAX_EVENTS} events and left out {}", trace.dropped);
        }
        Ok(())
    }
}

/// Collects fields as JSON values.
struct Fields<'a>(&'a mut serde_json::Map<String, serde_json::Value>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_string(), format!("{value:?}").into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_string(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_string(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_string(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_string(), value.into());
    }
}

/// A Chrome trace event: a span ("X", with its duration) or an instant ("i").
fn event_json(
    name: &str,
    cat: &str,
    ts: f64,
    dur: Option<f64>,
    tid: usize,
    args: serde_json::Map<String, serde_json::Value>,
) -> serde_json::Value {
    let mut e = serde_json::json!({ "name": name, "cat": cat, "ts": ts, "tid": tid, "args": args });
    match dur {
        Some(d) => {
            e["ph"] = "X".into();
            e["dur"] = d.into();
        }
        None => {
            e["ph"] = "i".into();
            e["s"] = "t".into();
        }
    }
    e
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Chrome {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: LayerContext<'_, S>) {
        let mut args = serde_json::Map::new();
        attrs.record(&mut Fields(&mut args));
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Open { start_us: self.now_us(), tid: self.lane(), args });
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: LayerContext<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(open) = span.extensions_mut().get_mut::<Open>()
        {
            values.record(&mut Fields(&mut open.args));
        }
    }

    fn on_event(&self, event: &Event<'_>, _ctx: LayerContext<'_, S>) {
        let mut args = serde_json::Map::new();
        event.record(&mut Fields(&mut args));
        let name = args.get("message").and_then(|m| m.as_str()).unwrap_or(event.metadata().name()).to_string();
        self.push(event_json(&name, event.metadata().target(), self.now_us(), None, self.lane(), args));
    }

    fn on_close(&self, id: Id, ctx: LayerContext<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(open) = span.extensions_mut().remove::<Open>() else { return };
        let meta = span.metadata();
        let dur = (self.now_us() - open.start_us).max(0.0);
        self.push(event_json(meta.name(), meta.target(), open.start_us, Some(dur), open.tid, open.args));
    }
}
