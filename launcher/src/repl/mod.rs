//! `starflow repl`: attach to a running server. Interactive on a terminal (line editing,
//! history, multi-line statements ended by `;`, Tab completion, a progress line, Ctrl-C
//! cancels the running query); otherwise it runs `-c` statements or a script from stdin and
//! its exit code says whether every statement succeeded.

mod client;
mod editor;
mod report;

use std::io::{IsTerminal, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use arrow_array::RecordBatch;
use arrow_cast::display::FormatOptions;
use arrow_schema::SchemaRef;
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;

use crate::cli::{Format, ReplArgs};
use crate::output::Output;
use crate::wire::{Frame, ProgressFrame};
use client::Client;
use editor::{SqlHelper, split_statements};

/// A statement failed and its error has been printed: exit with 1 without printing more.
#[derive(Debug, thiserror::Error)]
#[error("a statement failed")]
pub struct StatementFailed;

const HELP: &str = "\
Statements end with ';' and may span lines.
  SELECT … FROM catalog …;          a query (EXPLAIN SELECT … shows its plan)
  SHOW CATALOGS;  DESCRIBE name;    what can be queried
  SHOW QUERIES;   SHOW WORKERS;     what the server is doing, its processes and memory
  REPORT [id] [TO 'file.html'];     performance report of this session's last query (or query id)
  COPY (SELECT …) TO 'file.parquet';  write a whole result on the server (.parquet, .csv, .json)
  CREATE MATERIALIZED VIEW v AS SELECT …;  a query kept up to date as releases arrive
  SELECT … FROM v;  SUBSCRIBE v;  SHOW VIEWS;  DROP VIEW v;
  INGEST RELEASE 'label' INTO catalog FROM 'path';  SHOW RELEASES [catalog];
  SHUTDOWN;                         stop the server
Commands:
  \\timing [on|off]   show elapsed time (on in interactive sessions)
  \\format table|csv|json
  \\help  \\q
Ctrl-C cancels a running query; Ctrl-D or \\q leaves.";

struct Session {
    client: Client,
    format: Format,
    max_rows: Option<u64>,
    timing: bool,
    interrupted: Arc<AtomicBool>,
    progress: bool,
    /// The last query this session ran (`REPORT` shows it).
    last_query: Option<u64>,
}

/// Runs the REPL; an error means a statement failed (already printed) or the server could
/// not be reached.
pub fn run(args: &ReplArgs) -> Result<()> {
    let client = Client::open(&args.connect)?;
    let names = client.catalogs()?;
    // The first Ctrl-C cancels the running query; a second one (before the next statement)
    // leaves, as a stuck server must not trap the user.
    let interrupted = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register_conditional_shutdown(signal_hook::consts::SIGINT, 130, interrupted.clone())
        .context("cannot install the Ctrl-C handler")?;
    signal_hook::flag::register(signal_hook::consts::SIGINT, interrupted.clone())
        .context("cannot install the Ctrl-C handler")?;
    let interactive = args.commands.is_empty() && std::io::stdin().is_terminal();
    let format = args.format.unwrap_or(if std::io::stdout().is_terminal() { Format::Table } else { Format::Csv });
    let mut session = Session {
        client,
        format,
        max_rows: args.max_rows,
        timing: interactive,
        interrupted,
        progress: std::io::stderr().is_terminal(),
        last_query: None,
    };
    if !args.commands.is_empty() {
        for sql in &args.commands {
            let (mut statements, rest) = split_statements(sql);
            statements.extend(Some(rest).filter(|r| !r.is_empty()));
            for s in statements {
                session.statement(&s)?;
            }
        }
        return Ok(());
    }
    if !interactive {
        let mut script = String::new();
        std::io::stdin().read_to_string(&mut script).context("reading the script from standard input")?;
        return session.script(&script);
    }
    let words = names.iter().flat_map(|(catalog, columns)| std::iter::once(catalog).chain(columns)).cloned().collect();
    session.interactive(SqlHelper { names: words })
}

/// `starflow ingest`: one `INGEST RELEASE` statement.
pub fn ingest(args: &crate::cli::IngestArgs) -> Result<()> {
    let path = std::path::absolute(&args.path).unwrap_or_else(|_| args.path.clone().into());
    let quote = |s: &str| s.replace('\'', "''");
    let sql = format!(
        "INGEST RELEASE '{}' INTO {} FROM '{}'",
        quote(&args.release),
        args.catalog,
        quote(&path.to_string_lossy())
    );
    let mut session = Session {
        client: Client::open(&args.connect)?,
        format: Format::Table,
        max_rows: None,
        timing: false,
        interrupted: Arc::new(AtomicBool::new(false)),
        progress: false,
        last_query: None,
    };
    session.statement(&sql)
}

impl Session {
    fn max_rows(&self) -> u64 {
        self.max_rows.unwrap_or(if self.format == Format::Table { 100 } else { 0 })
    }

    /// A script: statements separated by `;`, and `\` commands on lines of their own.
    fn script(&mut self, text: &str) -> Result<()> {
        let mut pending = String::new();
        for line in text.lines() {
            if pending.trim().is_empty() && line.trim_start().starts_with('\\') {
                if !self.command(line.trim())? {
                    return Ok(());
                }
                continue;
            }
            pending.push_str(line);
            pending.push('\n');
            let (statements, rest) = split_statements(&pending);
            for s in statements {
                self.statement(&s)?;
            }
            pending = rest;
        }
        if !pending.trim().is_empty() {
            self.statement(&pending)?;
        }
        Ok(())
    }

    fn interactive(&mut self, helper: SqlHelper) -> Result<()> {
        let mut editor = rustyline::Editor::<SqlHelper, DefaultHistory>::new()?;
        editor.set_helper(Some(helper));
        let history = crate::connection::default_path("history")?.with_extension("");
        if let Some(dir) = history.parent().filter(|d| !d.exists()) {
            use std::os::unix::fs::DirBuilderExt;
            let _ = std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir);
        }
        let _ = editor.load_history(&history);
        let info = &self.client.info;
        println!(
            "starflow {} — connected to {}:{} (job {}, {} process(es) × {} workers); catalogs: {}\nType \\help for help.",
            env!("CARGO_PKG_VERSION"),
            info.host,
            info.port,
            info.job_id,
            info.processes,
            info.workers_per_process,
            info.catalogs.join(", ")
        );
        loop {
            match editor.readline("starflow> ") {
                Ok(line) => {
                    let text = line.trim();
                    if text.is_empty() {
                        continue;
                    }
                    let _ = editor.add_history_entry(text);
                    let _ = editor.save_history(&history);
                    if text.starts_with('\\') {
                        if !self.command(text)? {
                            return Ok(());
                        }
                        continue;
                    }
                    let (mut statements, rest) = split_statements(text);
                    statements.extend(Some(rest).filter(|r| !r.is_empty()));
                    for s in statements {
                        match self.statement(&s) {
                            Ok(()) => {}
                            Err(e) if e.is::<StatementFailed>() => {}
                            Err(e) => eprintln!("error: {e:#}"),
                        }
                    }
                }
                Err(ReadlineError::Interrupted) => continue,
                Err(ReadlineError::Eof) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// A `\` command; false to quit.
    fn command(&mut self, text: &str) -> Result<bool> {
        let mut words = text.split_whitespace();
        match (words.next().unwrap_or(""), words.next()) {
            ("\\q" | "\\quit", _) => return Ok(false),
            ("\\help" | "\\?" | "\\h", _) => println!("{HELP}"),
            ("\\timing", arg) => {
                self.timing = match arg {
                    Some("on") => true,
                    Some("off") => false,
                    _ => !self.timing,
                };
                println!("timing is {}", if self.timing { "on" } else { "off" });
            }
            ("\\format", Some(f)) => {
                self.format = match f {
                    "table" => Format::Table,
                    "csv" => Format::Csv,
                    "json" => Format::Json,
                    other => bail!("unknown format {other}: use table, csv or json"),
                };
            }
            (other, _) => bail!("unknown command {other}; \\help lists them"),
        }
        Ok(true)
    }

    /// Runs one statement and prints its result; `Err(StatementFailed)` once its error is printed.
    fn statement(&mut self, sql: &str) -> Result<()> {
        let Some(request) = report::parse(sql) else { return self.run(sql, None) };
        let request = request.inspect_err(|e| eprintln!("error: {e}")).map_err(|_| StatementFailed)?;
        // The session's last query unless one is named (the server's last if this session ran none).
        let id = request.id.or(self.last_query);
        let statement = id.map_or_else(|| "REPORT".to_string(), |id| format!("REPORT {id}"));
        self.run(&statement, request.to.as_deref())?;
        if let Some(path) = &request.to {
            let size = std::fs::metadata(path).map_or(0, |m| m.len());
            let which = id.map_or_else(|| "the server's last query".to_string(), |id| format!("query {id}"));
            println!("report of {which} written to {} ({})", path.display(), crate::progress::bytes(size));
        }
        Ok(())
    }

    /// Runs one statement; its text (a report) goes to `text_to` if given.
    fn run(&mut self, sql: &str, text_to: Option<&std::path::Path>) -> Result<()> {
        self.interrupted.store(false, Ordering::SeqCst);
        let is_query = sql.split_whitespace().next().is_some_and(|w| {
            ["SELECT", "COPY", "WITH"]
                .iter()
                .any(|k| w.eq_ignore_ascii_case(k) || w.to_ascii_uppercase().starts_with("COPY("))
        });
        let started = Instant::now();
        let mut frames = self.client.statement(sql, self.max_rows())?;
        let mut printer = Printer::new(self.format, self.progress);
        // SUBSCRIBE never ends by itself: print its changes as they come.
        printer.streaming = sql.trim_start().get(..9).is_some_and(|w| w.eq_ignore_ascii_case("SUBSCRIBE"));
        let mut query_id = None;
        let mut cancel_sent = false;
        loop {
            if self.interrupted.load(Ordering::SeqCst)
                && !cancel_sent
                && let Some(id) = query_id
            {
                printer.clear_progress();
                eprintln!("cancelling query {id} …");
                self.client.cancel(id)?;
                cancel_sent = true;
            }
            let Some(frame) = frames.next()? else {
                printer.clear_progress();
                bail!("the server closed the connection before the statement finished");
            };
            match frame {
                Frame::Query(id) => {
                    query_id = Some(id);
                    if is_query {
                        self.last_query = Some(id);
                    }
                }
                Frame::Schema(schema) => printer.schema(schema)?,
                Frame::Rows(batch) => printer.rows(&batch)?,
                Frame::Progress(p) => printer.progress(&p),
                Frame::Text(text) => {
                    printer.clear_progress();
                    match text_to {
                        Some(path) => std::fs::write(path, &text)
                            .with_context(|| format!("cannot write the report to {}", path.display()))?,
                        None => println!("{}", text.trim_end()),
                    }
                }
                Frame::Error(message) => {
                    printer.clear_progress();
                    eprintln!("error: {message}");
                    return Err(StatementFailed.into());
                }
                Frame::Done(done) => {
                    printer.finish(done.rows_out, done.rows_sent)?;
                    if self.timing {
                        let line = format!(
                            "Time: {:.3} s (on the server: {:.4} s)",
                            started.elapsed().as_secs_f64(),
                            done.seconds
                        );
                        if self.format == Format::Table { println!("{line}") } else { eprintln!("{line}") }
                    }
                    std::io::stdout().flush()?;
                    return Ok(());
                }
            }
        }
    }
}

/// Prints one statement's result as it arrives.
struct Printer {
    format: Format,
    streaming: bool,
    show_progress: bool,
    progress_shown: bool,
    table: Option<(SchemaRef, Vec<RecordBatch>)>,
    output: Option<Output>,
}

impl Printer {
    fn new(format: Format, show_progress: bool) -> Self {
        Self { format, streaming: false, show_progress, progress_shown: false, table: None, output: None }
    }

    fn schema(&mut self, schema: SchemaRef) -> Result<()> {
        match self.format {
            Format::Table | Format::Parquet => self.table = Some((schema, Vec::new())),
            f => self.output = Some(Output::open(f, None, schema)?),
        }
        Ok(())
    }

    fn rows(&mut self, batch: &RecordBatch) -> Result<()> {
        if self.streaming && self.table.is_some() {
            self.clear_progress();
            let options = FormatOptions::default().with_null("NULL");
            println!(
                "{}",
                arrow_cast::pretty::pretty_format_batches_with_options(std::slice::from_ref(batch), &options)?
            );
            std::io::stdout().flush()?;
        } else if let Some((_, batches)) = self.table.as_mut() {
            batches.push(batch.clone());
        } else if self.output.is_some() {
            self.clear_progress();
            let output = self.output.as_mut().expect("output");
            output.write(batch)?;
            if self.streaming {
                output.flush()?;
            }
        }
        Ok(())
    }

    fn progress(&mut self, p: &ProgressFrame) {
        if !self.show_progress || p.seconds < crate::progress::QUIET {
            return;
        }
        if self.streaming {
            eprint!("\r\x1b[K  waiting for the next release · {:.0} s · Ctrl-C stops", p.seconds);
            self.progress_shown = true;
            return;
        }
        let line = crate::progress::line(p) + " · Ctrl-C cancels";
        eprint!("\r\x1b[K{line}");
        self.progress_shown = true;
    }

    fn clear_progress(&mut self) {
        if self.progress_shown {
            eprint!("\r\x1b[K");
            self.progress_shown = false;
        }
    }

    fn finish(&mut self, rows_out: u64, rows_sent: u64) -> Result<()> {
        self.clear_progress();
        if let Some(o) = self.output.take() {
            return o.finish();
        }
        let Some((schema, batches)) = self.table.take() else { return Ok(()) };
        if self.streaming {
            println!("({rows_out} changes)");
            return Ok(());
        }
        let shown = if batches.is_empty() { vec![RecordBatch::new_empty(schema)] } else { batches };
        let table = arrow_cast::pretty::pretty_format_batches_with_options(
            &shown,
            &FormatOptions::default().with_null("NULL"),
        )?;
        println!("{table}");
        let plural = |n: u64| if n == 1 { "" } else { "s" };
        if rows_sent < rows_out {
            println!(
                "({rows_sent} of {rows_out} rows shown; COPY (query) TO 'file.parquet' writes them all, \\format csv prints them)"
            );
        } else {
            println!("({rows_out} row{})", plural(rows_out));
        }
        Ok(())
    }
}
