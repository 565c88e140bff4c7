//! Which processes run a query: alone, `--processes N` on this machine (this process is
//! rank 0 and starts the others), `--hosts FILE`, or under `srun` (from SLURM's variables).

use std::collections::HashMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use starflow_dataflow::ClusterOptions;

use crate::bootstrap::{ClusterSpec, slurm};
use crate::cli::ClusterArgs;

/// The topology of this run and the local processes this one started.
pub struct Topology {
    /// None: one process.
    pub spec: Option<ClusterSpec>,
    /// Processes started by `--processes N` (killed if this one fails).
    pub children: Vec<Child>,
}

impl Topology {
    /// This process's index (0 when alone).
    pub fn process(&self) -> usize {
        self.spec.as_ref().map_or(0, |s| s.process)
    }

    /// Processes of the run (1 when alone).
    pub fn processes(&self) -> usize {
        self.spec.as_ref().map_or(1, |s| s.processes)
    }

    /// Worker threads per process: the spec's, else `--workers`, else every core.
    pub fn threads(&self, args: &ClusterArgs) -> usize {
        self.spec
            .as_ref()
            .map(|s| s.threads)
            .unwrap_or_else(|| args.workers.unwrap_or_else(crate::query::default_workers))
            .max(1)
    }

    /// Options for the query runner.
    pub fn options(&self, connect_timeout: Duration, fingerprint: u64) -> Option<ClusterOptions> {
        let spec = self.spec.as_ref().filter(|s| s.processes > 1)?;
        Some(ClusterOptions { process: spec.process, addresses: spec.addresses(), connect_timeout, fingerprint })
    }

    /// Waits for the started processes; an error names the first that failed.
    pub fn wait(&mut self) -> Result<()> {
        for (i, child) in self.children.iter_mut().enumerate() {
            let status = child.wait().context("waiting for a local process")?;
            if !status.success() {
                bail!("local process {} failed ({status})", i + 1);
            }
        }
        Ok(())
    }

    /// Stops the started processes (after a failure here).
    pub fn kill(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs `f` on this run's topology: the processes it started are waited for when `f`
/// succeeds and stopped when it fails.
pub fn run_with(args: &ClusterArgs, f: impl FnOnce(&Topology) -> Result<()>) -> Result<()> {
    let mut topology = resolve(args)?;
    let result = f(&topology);
    if result.is_err() {
        topology.kill();
    } else {
        topology.wait()?;
    }
    result
}

/// Works out the topology from the command line and the environment.
pub fn resolve(args: &ClusterArgs) -> Result<Topology> {
    let threads = args.workers.unwrap_or_else(crate::query::default_workers).max(1);
    if let Some(peers) = &args.peers {
        let addresses: Vec<String> = peers.split(',').map(str::to_string).collect();
        return Ok(Topology {
            spec: Some(spec_from_addresses(&addresses, args.process.unwrap_or(0), threads)?),
            children: vec![],
        });
    }
    if let Some(n) = args.processes.filter(|n| *n > 1) {
        return spawn_local(n, threads);
    }
    if let Some(file) = &args.hosts {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("cannot read the host file {}", file.display()))?;
        let Some(process) = args.process else {
            bail!("--hosts needs --process I (this process's line in the host file, from 0)")
        };
        let spec = slurm::topology_from_hostfile(&text, process, threads)?;
        return Ok(Topology { spec: Some(spec), children: vec![] });
    }
    let env: HashMap<String, String> = std::env::vars().filter(|(k, _)| k.starts_with("SLURM_")).collect();
    if let Some(mut spec) = slurm::topology_from_env(&env)? {
        if let Some(w) = args.workers {
            spec.threads = w.max(1);
        }
        if let Some(interface) = &args.interface {
            crate::bootstrap::interface::rendezvous(&mut spec, interface, &env)?;
        }
        tracing::debug!(?spec, "slurm topology");
        return Ok(Topology { spec: Some(spec), children: vec![] });
    }
    Ok(Topology { spec: None, children: vec![] })
}

fn spec_from_addresses(addresses: &[String], process: usize, threads: usize) -> Result<ClusterSpec> {
    let mut hosts = Vec::new();
    let mut ports = Vec::new();
    for a in addresses {
        let (host, port) = a.rsplit_once(':').with_context(|| format!("peer address \"{a}\" needs host:port"))?;
        hosts.push(host.to_string());
        ports.push(port.parse().with_context(|| format!("bad port in peer address \"{a}\""))?);
    }
    if process >= addresses.len() {
        bail!("--process {process} is not below the number of peers ({})", addresses.len());
    }
    Ok(ClusterSpec { process, processes: addresses.len(), threads, hosts, ports })
}

/// Starts processes 1..n on loopback with this process's arguments; this one is process 0.
fn spawn_local(n: usize, threads: usize) -> Result<Topology> {
    let listeners: Vec<TcpListener> =
        (0..n).map(|_| TcpListener::bind("127.0.0.1:0")).collect::<Result<_, _>>().context("choosing local ports")?;
    let addresses: Vec<String> =
        listeners.iter().map(|l| l.local_addr().map(|a| a.to_string())).collect::<Result<_, _>>()?;
    drop(listeners);
    let exe = std::env::current_exe().context("cannot find the starflow executable")?;
    let args = args_without_processes(std::env::args().skip(1));
    let mut children = Vec::new();
    for i in 1..n {
        let child = Command::new(&exe)
            .args(&args)
            .args(["--process", &i.to_string(), "--peers", &addresses.join(",")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start local process {i}"))?;
        children.push(child);
    }
    Ok(Topology { spec: Some(spec_from_addresses(&addresses, 0, threads)?), children })
}

/// This process's arguments without `--processes N` (the started processes are peers).
fn args_without_processes(args: impl Iterator<Item = String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut skip = false;
    for a in args {
        if skip {
            skip = false;
            continue;
        }
        if a == "--processes" {
            skip = true;
        } else if !a.starts_with("--processes=") {
            out.push(a);
        }
    }
    out
}

/// A fixed (process-independent) hash of the command, compared between processes at connect.
pub fn fingerprint(command: &str) -> u64 {
    command.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processes_flag_is_removed_for_peers() {
        let args = ["query", "--processes", "3", "--catalog", "a=b", "--processes=2", "SELECT 1"].map(String::from);
        assert_eq!(args_without_processes(args.into_iter()), ["query", "--catalog", "a=b", "SELECT 1"]);
    }
}
