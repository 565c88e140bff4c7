//! `starflow serve`: a long-running computation that answers statements from clients.
//!
//! Every process runs the timely workers ([`starflow_dataflow::Server`]). Process 0 opens the
//! catalogs, ships them to the others, and runs the control plane ([`control`]); it writes
//! the connection file once it listens. SIGTERM (what SLURM sends at the end of the
//! walltime), SIGINT or a `SHUTDOWN` statement stop every process cleanly: running queries
//! end with an error their clients see, the connection file is removed.

mod contributions;
mod control;
mod execute;
mod helper;
pub mod statement;
mod status;
mod store;
mod views;

use std::net::{TcpListener, ToSocketAddrs};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use starflow_dataflow::{Server, Shipped, connect};
use starflow_operators::Operators;

use crate::cli::ServeArgs;
use crate::connection::{self, ConnectionInfo};
use execute::State;
use store::Store;

/// Runs the server until it is told to stop.
pub fn run(args: &ServeArgs) -> Result<()> {
    // Registered first, so a SIGTERM during start-up is not lost either.
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, stop.clone()).context("cannot install the signal handlers")?;
    }
    crate::cluster::run_with(&args.cluster, |topology| serve(args, topology, &stop))
}

fn serve(args: &ServeArgs, topology: &crate::cluster::Topology, stop: &AtomicBool) -> Result<()> {
    let (threads, processes) = (topology.threads(&args.cluster), topology.processes());
    let leader = topology.process() == 0;
    let fingerprint = crate::cluster::fingerprint(&format!("serve\n{:?}\n{threads}", args.catalogs));
    let cluster = topology.options(Duration::from_secs(args.cluster.connect_timeout), fingerprint);
    // Process 0 opens the catalogs (and the state folder); every query carries the catalogs it
    // reads to the other processes, so they only learn here whether process 0 could start.
    let (store, connected) = match (cluster, leader) {
        (None, _) => (Some(Store::open(args.state_dir.as_deref(), &args.catalogs)?), None),
        (Some(options), true) => {
            let opened = Store::open(args.state_dir.as_deref(), &args.catalogs);
            let shipped = match &opened {
                Ok(_) => Shipped::Serve { catalogs: vec![] },
                Err(e) => Shipped::Failed(format!("{e:#}")),
            };
            let connected = connect(&options, Some(&shipped.encode()?))?;
            (Some(opened?), Some(connected))
        }
        (Some(options), false) => {
            let connected = connect(&options, None)?;
            match Shipped::decode(connected.shipped.as_deref().unwrap_or_default())? {
                Shipped::Serve { .. } => (None, Some(connected)),
                Shipped::Failed(message) => bail!("process 0 could not open the catalogs: {message}"),
                _ => bail!("process 0 is not a server (starflow serve)"),
            }
        }
    };
    let server = Server::start(threads, connected, Operators)?;
    let Some(mut store) = store else {
        tracing::info!(process = topology.process(), "serving");
        return wait_and_stop(&server, stop);
    };
    // Views defined in an earlier run come back at their catalogs' latest release.
    for (name, sql) in store.saved_views()? {
        match views::create_view(&mut store, &server, &name, &sql) {
            Ok(message) => eprintln!("starflow serve: {message}"),
            Err(e) => eprintln!("starflow serve: view {name} could not be restored: {e:#}"),
        }
    }
    let catalogs = store.catalog_set();

    let host = args
        .listen
        .clone()
        .or_else(|| topology.spec.as_ref().map(|s| s.hosts[0].clone()))
        .unwrap_or_else(|| "127.0.0.1".into());
    let address = (host.as_str(), args.port)
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {host} for the control plane"))?
        .next()
        .with_context(|| format!("{host} has no address"))?;
    let listener =
        TcpListener::bind(address).with_context(|| format!("the control plane cannot listen on {address}"))?;
    let port = listener.local_addr()?.port();
    let job_id = std::env::var("SLURM_JOB_ID")
        .ok()
        .filter(|j| !j.is_empty())
        .unwrap_or_else(|| format!("local-{}", std::process::id()));
    // Clients need an address they can reach: not 0.0.0.0 or ::.
    let advertised = if address.ip().is_unspecified() {
        starflow_dataflow::system::node_name().unwrap_or(host.clone())
    } else {
        host.clone()
    };
    let info = ConnectionInfo {
        host: advertised,
        port,
        token: connection::new_token()?,
        job_id: job_id.clone(),
        catalogs: catalogs.names().map(str::to_string).collect(),
        pid: std::process::id(),
        processes,
        workers_per_process: threads,
        version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let persistent = store.persistent;
    let state_dir = store.dir.clone();
    let state = Arc::new(State {
        server,
        catalogs: RwLock::new(catalogs.clone()),
        paths: RwLock::new(store.roots()),
        store: Mutex::new(store),
        tables_pending: Mutex::new(false),
        reserve_manifests: AtomicBool::new(false),
        tables_written: Default::default(),
        token: info.token.clone(),
        processes,
        threads,
        running: Default::default(),
        reports: Default::default(),
        shutdown: AtomicBool::new(false),
        next_subscription: std::sync::atomic::AtomicU64::new(1 << 62),
    });
    let (http, http_thread) = control::start(state.clone(), listener)?;
    let file = match &args.connection_file {
        Some(f) => f.clone(),
        // A second server in the same job (another step) gets a file of its own.
        None => match (connection::default_path(&job_id)?, std::env::var("SLURM_STEP_ID")) {
            (p, Ok(step)) if p.exists() => connection::default_path(&format!("{job_id}.{step}"))?,
            (p, _) => p,
        },
    };
    connection::write(&file, &info)?;
    eprintln!(
        "starflow serve: {processes} process(es) × {threads} worker(s), catalogs {}; listening on {host}:{port}\n\
         connect with: starflow repl --connect {}",
        info.catalogs.join(", "),
        file.display()
    );
    if !persistent {
        eprintln!("starflow serve: no --state-dir: releases and views last until the server stops");
    }
    let result = wait_and_stop_leader(&state, stop, &file);
    actix_web::rt::System::new().block_on(http.stop(true));
    let _ = http_thread.join();
    // Statement threads may still hold the state (one blocked writing a COPY file, say):
    // the workers stop regardless, and the process exits without waiting for them.
    let outcome = result.and(wait_and_stop(&state.server, &AtomicBool::new(true)));
    if !persistent {
        let _ = std::fs::remove_dir_all(&state_dir);
    }
    eprintln!("starflow serve: stopped");
    outcome
}

/// Process 0: waits for a signal, a `SHUTDOWN`, or the workers ending (a shutdown from
/// another process), then asks every process to stop and removes the connection file.
fn wait_and_stop_leader(state: &State, stop: &AtomicBool, file: &Path) -> Result<()> {
    while !stop.load(Ordering::SeqCst) && !state.shutdown.load(Ordering::SeqCst) && !state.server.lost_a_worker() {
        std::thread::sleep(Duration::from_millis(50));
    }
    tracing::info!("shutting down");
    state.server.request_shutdown();
    // Only our own file: another server may have written its own there since.
    if connection::read(file).is_ok_and(|info| info.token == state.token) {
        let _ = std::fs::remove_file(file);
    }
    Ok(())
}

/// Waits for a signal or for the workers to end, then stops this process's workers.
fn wait_and_stop(server: &Server, stop: &AtomicBool) -> Result<()> {
    while !stop.load(Ordering::SeqCst) && !server.is_finished() {
        std::thread::sleep(Duration::from_millis(50));
    }
    server.request_shutdown();
    server.join()?;
    Ok(())
}
