//! Topologies from SLURM's variables (under `srun`), from a host file (`--hosts FILE`) and
//! for local runs (`--processes N`). Pure functions: the caller passes the environment in.
//!
//! Under `srun`, SLURM starts one process per task and tells each where it is
//! (`SLURM_PROCID`, `SLURM_LOCALID`, `SLURM_NODEID`) and what the step looks like
//! (`SLURM_NTASKS`, `SLURM_STEP_NODELIST`, `SLURM_STEP_TASKS_PER_NODE`). It does not tell
//! where the *other* ranks are, so we rebuild the layout of SLURM's default block
//! distribution — node i runs the next `tasks_per_node[i]` ranks — and check it against
//! what SLURM told this rank. With `--distribution=cyclic` (or plane, arbitrary) that
//! check fails on most ranks with an error naming `SLURM_LOCALID` or `SLURM_NODEID`.

use std::collections::HashMap;

use super::hostlist::expand_hostlist;
use super::{BootstrapError, ClusterSpec};

/// First port that [`base_port`] can return.
pub const PORT_RANGE_START: u16 = 20_000;
/// Number of base ports [`base_port`] chooses from: bases lie in `[20000, 31000)`, so every
/// port stays below Linux's ephemeral range (32768–60999), where srun's own listening sockets
/// and every outgoing connection take their ports (a base there collided now and then).
pub const PORT_RANGE_LEN: u16 = 11_000;
/// Most tasks of one step on one node: ports stay below `31000 + 1024`.
pub const MAX_TASKS_PER_NODE: usize = 1024;
/// Port of host-file line `i` (0-based, counting hosts only) when it gives none: `2101 + i`.
pub const DEFAULT_HOSTFILE_PORT: u16 = 2101;

/// The topology of this `srun` task, or None when not under `srun` (`SLURM_PROCID` unset).
///
/// Reads (first one set wins):
/// - `SLURM_PROCID`: this process's index;
/// - `SLURM_NTASKS` | `SLURM_NPROCS`: number of processes;
/// - `SLURM_CPUS_PER_TASK`: worker threads per process (default 1);
/// - `SLURM_STEP_NODELIST` | `SLURM_JOB_NODELIST` | `SLURM_NODELIST`: the nodes, as a host list;
/// - `SLURM_STEP_TASKS_PER_NODE` | `SLURM_TASKS_PER_NODE`: tasks of each node (`2(x3),1`);
/// - `SLURM_JOB_ID`, `SLURM_STEP_ID` | `SLURM_STEPID` (default 0): choose the ports.
///
/// Checks, when set: `SLURM_STEP_NUM_NODES` (with the step node list) or
/// `SLURM_JOB_NUM_NODES` | `SLURM_NNODES` (with the job node list), `SLURM_LOCALID`,
/// `SLURM_NODEID`. Process `r` gets port `base_port(job, step) + local id of r on its node`.
pub fn topology_from_env(env: &HashMap<String, String>) -> Result<Option<ClusterSpec>, BootstrapError> {
    let Some(procid) = env.get("SLURM_PROCID") else { return Ok(None) };
    let process: usize = parse_var("SLURM_PROCID", procid, "a task index")?;
    let (ntasks_var, ntasks) = required(env, &["SLURM_NTASKS", "SLURM_NPROCS"])?;
    let processes: usize = parse_var(ntasks_var, ntasks, "a number of tasks")?;
    let threads = match env.get("SLURM_CPUS_PER_TASK") {
        Some(text) => parse_var("SLURM_CPUS_PER_TASK", text, "a number of CPUs")?,
        None => 1,
    };
    if processes == 0 {
        return Err(invalid(ntasks_var, ntasks, "a positive number of tasks"));
    }
    if threads == 0 {
        return Err(invalid("SLURM_CPUS_PER_TASK", "0", "a positive number of CPUs"));
    }
    if process >= processes {
        let message = format!("rank {process} is not below {ntasks_var}={processes}");
        return Err(BootstrapError::Inconsistent { var: "SLURM_PROCID", message });
    }

    let (nodelist_var, nodelist) = required(env, &["SLURM_STEP_NODELIST", "SLURM_JOB_NODELIST", "SLURM_NODELIST"])?;
    let nodes = expand_hostlist(nodelist)?;
    let (tasks_var, tasks_text) = required(env, &["SLURM_STEP_TASKS_PER_NODE", "SLURM_TASKS_PER_NODE"])?;
    let tasks = parse_tasks_per_node(tasks_text)
        .ok_or_else(|| invalid(tasks_var, tasks_text, "a tasks-per-node list such as 2(x3),1"))?;
    check_node_count(env, nodelist_var, nodes.len())?;
    if tasks.len() != nodes.len() {
        let message = format!(
            "{tasks_var}={tasks_text} describes {} nodes but {nodelist_var}={nodelist} has {}",
            tasks.len(),
            nodes.len()
        );
        return Err(BootstrapError::Inconsistent { var: tasks_var, message });
    }
    let total: usize = tasks.iter().sum();
    if total != processes {
        let message = format!("{tasks_var}={tasks_text} adds up to {total} tasks but {ntasks_var}={processes}");
        return Err(BootstrapError::Inconsistent { var: tasks_var, message });
    }
    if let Some(&most) = tasks.iter().find(|&&n| n > MAX_TASKS_PER_NODE) {
        let message = format!("{most} tasks on one node; starflow supports at most {MAX_TASKS_PER_NODE}");
        return Err(BootstrapError::Inconsistent { var: tasks_var, message });
    }

    // Block distribution: node i runs ranks first[i] .. first[i] + tasks[i].
    let layout: Vec<(usize, usize)> =
        tasks.iter().enumerate().flat_map(|(node, &n)| (0..n).map(move |local| (node, local))).collect();
    let (node, local) = layout[process];
    let expect = |var: &'static str, actual: usize, what: &str| -> Result<(), BootstrapError> {
        let Some(text) = env.get(var) else { return Ok(()) };
        let value: usize = parse_var(var, text, "a number")?;
        if value == actual {
            return Ok(());
        }
        let message = format!(
            "is {value} but rank {process} should be {what} {actual} under block distribution \
             (node {} of {nodelist_var}, {tasks_var}={tasks_text}); run srun with --distribution=block",
            nodes[node]
        );
        Err(BootstrapError::Inconsistent { var, message })
    };
    expect("SLURM_NODEID", node, "node")?;
    expect("SLURM_LOCALID", local, "local task")?;

    let job = optional_u64(env, &["SLURM_JOB_ID"])?;
    let step = optional_u64(env, &["SLURM_STEP_ID", "SLURM_STEPID"])?;
    let base = base_port(job, step);
    Ok(Some(ClusterSpec {
        process,
        processes,
        threads,
        hosts: layout.iter().map(|&(node, _)| nodes[node].clone()).collect(),
        ports: layout.iter().map(|&(_, local)| base + local as u16).collect(),
    }))
}

/// The first port of a job step on every node: deterministic, in `[20000, 31000)`, spread
/// by a hash of `(job, step)` so two jobs (or two steps of one job) sharing a node rarely
/// collide. A task's port is this plus its local id (< [`MAX_TASKS_PER_NODE`]), so every
/// port is below 32024.
pub fn base_port(job_id: u64, step_id: u64) -> u16 {
    let hash = splitmix64(splitmix64(job_id) ^ step_id);
    PORT_RANGE_START + (hash % u64::from(PORT_RANGE_LEN)) as u16
}

/// The topology described by a host file (`--hosts FILE`): one `host[:port]` per line,
/// process i on the i-th host line. Blank lines and `#` comments (whole-line or trailing)
/// are ignored; IPv6 addresses go in brackets (`[::1]:2101`, kept bracketed in `hosts`).
/// A line without a port gets [`DEFAULT_HOSTFILE_PORT`] + its index (2101, 2102, …).
/// Errors: unreadable lines, port 0, the same `host:port` twice, no hosts, or
/// `process` not below the number of hosts. `threads` is taken as given.
pub fn topology_from_hostfile(text: &str, process: usize, threads: usize) -> Result<ClusterSpec, BootstrapError> {
    let mut hosts: Vec<String> = Vec::new();
    let mut ports: Vec<u16> = Vec::new();
    for (number, raw) in text.lines().enumerate() {
        let entry = raw.split('#').next().unwrap_or_default().trim();
        if entry.is_empty() {
            continue;
        }
        let bad =
            |reason| BootstrapError::InvalidHostfileLine { line: number + 1, text: raw.trim().to_string(), reason };
        let (host, port) = split_host_port(entry).map_err(bad)?;
        let port = match port {
            Some(port) => port,
            None => u16::try_from(hosts.len())
                .ok()
                .and_then(|i| DEFAULT_HOSTFILE_PORT.checked_add(i))
                .ok_or_else(|| bad("too many hosts for default ports; give ports explicitly"))?,
        };
        if hosts.iter().zip(&ports).any(|(h, &p)| h == host && p == port) {
            return Err(bad("the same host:port as an earlier line"));
        }
        hosts.push(host.to_string());
        ports.push(port);
    }
    if hosts.is_empty() {
        return Err(BootstrapError::EmptyHostfile);
    }
    if process >= hosts.len() {
        return Err(BootstrapError::ProcessOutOfRange { process, processes: hosts.len() });
    }
    Ok(ClusterSpec { process, processes: hosts.len(), threads, hosts, ports })
}

/// `host`, `host:port`, `[v6]` or `[v6]:port` → host and optional port.
fn split_host_port(entry: &str) -> Result<(&str, Option<u16>), &'static str> {
    if entry.contains(char::is_whitespace) {
        return Err("expected one host[:port] per line");
    }
    let (host, port) = if entry.starts_with('[') {
        let close = entry.find(']').ok_or("unclosed '[' in IPv6 address")?;
        match &entry[close + 1..] {
            "" => (&entry[..=close], None),
            rest => (&entry[..=close], Some(rest.strip_prefix(':').ok_or("expected :port after ']'")?)),
        }
    } else if entry.matches(':').count() > 1 {
        return Err("IPv6 addresses need brackets: [address]:port");
    } else {
        match entry.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (entry, None),
        }
    };
    if host.is_empty() || host == "[]" {
        return Err("empty host");
    }
    let port = match port {
        Some(text) => {
            Some(text.parse::<u16>().ok().filter(|&p| p != 0).ok_or("port must be a number from 1 to 65535")?)
        }
        None => None,
    };
    Ok((host, port))
}

/// SLURM's tasks-per-node format: `2(x3),1` → [2, 2, 2, 1].
fn parse_tasks_per_node(text: &str) -> Option<Vec<usize>> {
    let mut tasks = Vec::new();
    for item in text.split(',').map(str::trim) {
        let (count, repeat) = match item.split_once('(') {
            Some((count, rest)) => (count, rest.strip_prefix('x')?.strip_suffix(')')?.parse::<usize>().ok()?),
            None => (item, 1),
        };
        let count: usize = count.trim().parse().ok()?;
        if repeat == 0 || tasks.len() + repeat > 1 << 20 {
            return None;
        }
        tasks.extend(std::iter::repeat_n(count, repeat));
    }
    Some(tasks)
}

/// Compares the node list's length with the matching node-count variable, when set.
fn check_node_count(env: &HashMap<String, String>, nodelist_var: &str, nodes: usize) -> Result<(), BootstrapError> {
    let vars: &[&'static str] = if nodelist_var == "SLURM_STEP_NODELIST" {
        &["SLURM_STEP_NUM_NODES"]
    } else {
        &["SLURM_JOB_NUM_NODES", "SLURM_NNODES"]
    };
    let Some((var, text)) = first(env, vars) else { return Ok(()) };
    let count: usize = parse_var(var, text, "a number of nodes")?;
    if count == nodes {
        return Ok(());
    }
    let message = format!("is {count} but {nodelist_var} lists {nodes} nodes");
    Err(BootstrapError::Inconsistent { var, message })
}

fn first<'e>(env: &'e HashMap<String, String>, vars: &[&'static str]) -> Option<(&'static str, &'e str)> {
    vars.iter().find_map(|&var| env.get(var).map(|value| (var, value.as_str())))
}

fn required<'e>(
    env: &'e HashMap<String, String>,
    vars: &[&'static str],
) -> Result<(&'static str, &'e str), BootstrapError> {
    first(env, vars).ok_or(BootstrapError::MissingVar { var: vars[0] })
}

fn optional_u64(env: &HashMap<String, String>, vars: &[&'static str]) -> Result<u64, BootstrapError> {
    first(env, vars).map_or(Ok(0), |(var, text)| parse_var(var, text, "a number"))
}

fn parse_var<T: std::str::FromStr>(var: &'static str, text: &str, expected: &'static str) -> Result<T, BootstrapError> {
    text.trim().parse().map_err(|_| invalid(var, text, expected))
}

fn invalid(var: &'static str, value: &str, expected: &'static str) -> BootstrapError {
    BootstrapError::InvalidVar { var, value: value.to_string(), expected }
}

/// A fixed 64-bit mixer (splitmix64's finaliser): the same ports on every machine and build.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> HashMap<String, String> {
        vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// The variables srun sets for rank `procid` of a block-distributed step.
    fn srun_env(nodelist: &str, tasks: &str, procid: usize) -> HashMap<String, String> {
        let per_node = parse_tasks_per_node(tasks).unwrap();
        let ntasks: usize = per_node.iter().sum();
        let (mut node, mut first) = (0, 0);
        while procid >= first + per_node[node] {
            first += per_node[node];
            node += 1;
        }
        let mut e = env(&[
            ("SLURM_JOB_ID", "4242"),
            ("SLURM_STEP_ID", "0"),
            ("SLURM_STEP_NODELIST", nodelist),
            ("SLURM_STEP_TASKS_PER_NODE", tasks),
            ("SLURM_CPUS_PER_TASK", "8"),
        ]);
        for (k, v) in [
            ("SLURM_PROCID", procid),
            ("SLURM_NTASKS", ntasks),
            ("SLURM_STEP_NUM_NODES", per_node.len()),
            ("SLURM_NODEID", node),
            ("SLURM_LOCALID", procid - first),
        ] {
            e.insert(k.to_string(), v.to_string());
        }
        e
    }

    fn spec(e: &HashMap<String, String>) -> ClusterSpec {
        topology_from_env(e).unwrap().unwrap()
    }

    #[test]
    fn not_under_srun_gives_none() {
        assert_eq!(topology_from_env(&HashMap::new()), Ok(None));
        assert_eq!(topology_from_env(&env(&[("SLURM_JOB_ID", "1"), ("SLURM_NTASKS", "4")])), Ok(None));
    }

    #[test]
    fn one_node_three_tasks_get_three_ports() {
        let base = base_port(4242, 0);
        for rank in 0..3 {
            let s = spec(&srun_env("cn07", "3", rank));
            assert_eq!((s.process, s.processes, s.threads), (rank, 3, 8));
            assert_eq!(s.hosts, ["cn07", "cn07", "cn07"]);
            assert_eq!(s.ports, [base, base + 1, base + 2]);
        }
        let s = spec(&srun_env("cn07", "3", 2));
        assert_eq!(s.addresses(), [format!("cn07:{base}"), format!("cn07:{}", base + 1), format!("cn07:{}", base + 2)]);
    }

    #[test]
    fn three_nodes_one_task_each() {
        let s = spec(&srun_env("cn[01-03]", "1(x3)", 1));
        assert_eq!(s.hosts, ["cn01", "cn02", "cn03"]);
        assert_eq!(s.ports, [base_port(4242, 0); 3]);
        assert_eq!(s.process, 1);
    }

    #[test]
    fn uneven_tasks_per_node_follow_block_distribution() {
        assert_eq!(parse_tasks_per_node("2(x3),1"), Some(vec![2, 2, 2, 1]));
        let base = base_port(4242, 0);
        let all: Vec<ClusterSpec> = (0..5).map(|r| spec(&srun_env("a[1-2],b", "2(x2),1", r))).collect();
        for (rank, s) in all.iter().enumerate() {
            assert_eq!(s.process, rank);
            assert_eq!(s.hosts, ["a1", "a1", "a2", "a2", "b"]);
            assert_eq!(s.ports, [base, base + 1, base, base + 1, base]);
        }
    }

    #[test]
    fn ports_are_unique_per_node_and_local_id() {
        let s = spec(&srun_env("n[1-4]", "3,4(x2),2", 0));
        let mut addresses = s.addresses();
        addresses.sort();
        addresses.dedup();
        assert_eq!(addresses.len(), s.processes);
        assert_eq!(s.processes, 13);
        assert!(s.ports.iter().all(|&p| (20_000..31_000 + MAX_TASKS_PER_NODE as u16).contains(&p)));
    }

    #[test]
    fn ports_differ_between_jobs_and_steps() {
        assert_ne!(base_port(4242, 0), base_port(4243, 0));
        assert_ne!(base_port(4242, 0), base_port(4242, 1));
        let mut other = srun_env("cn07", "3", 0);
        other.insert("SLURM_JOB_ID".into(), "4243".into());
        assert_ne!(spec(&srun_env("cn07", "3", 0)).ports, spec(&other).ports);
        let bases: std::collections::HashSet<u16> = (0..1000).map(|job| base_port(job, 0)).collect();
        assert!(bases.len() > 940, "{} distinct bases of 1000", bases.len());
        assert!((0..10_000).all(|job| (20_000..31_000).contains(&base_port(job, job % 3))));
    }

    #[test]
    fn job_variables_and_defaults_are_used_when_step_ones_are_missing() {
        let e = env(&[
            ("SLURM_PROCID", "1"),
            ("SLURM_NPROCS", "2"),
            ("SLURM_JOB_NODELIST", "x[1-2]"),
            ("SLURM_TASKS_PER_NODE", "1(x2)"),
            ("SLURM_JOB_NUM_NODES", "2"),
        ]);
        let s = spec(&e);
        assert_eq!((s.process, s.processes, s.threads), (1, 2, 1));
        assert_eq!(s.hosts, ["x1", "x2"]);
        assert_eq!(s.ports, [base_port(0, 0); 2]);
    }

    #[test]
    fn missing_variables_are_named() {
        let full = srun_env("n[1-2]", "1(x2)", 0);
        for (removed, named) in [
            (&["SLURM_NTASKS"][..], "SLURM_NTASKS"),
            (&["SLURM_STEP_NODELIST"], "SLURM_STEP_NODELIST"),
            (&["SLURM_STEP_TASKS_PER_NODE"], "SLURM_STEP_TASKS_PER_NODE"),
        ] {
            let mut e = full.clone();
            for var in removed {
                e.remove(*var);
            }
            assert_eq!(topology_from_env(&e), Err(BootstrapError::MissingVar { var: named }));
        }
    }

    #[test]
    fn unreadable_variables_are_named() {
        for (var, value) in [
            ("SLURM_PROCID", "x"),
            ("SLURM_NTASKS", "-2"),
            ("SLURM_CPUS_PER_TASK", "0"),
            ("SLURM_STEP_TASKS_PER_NODE", "2(3)"),
            ("SLURM_JOB_ID", "abc"),
        ] {
            let mut e = srun_env("n[1-2]", "1(x2)", 0);
            e.insert(var.into(), value.into());
            match topology_from_env(&e) {
                Err(BootstrapError::InvalidVar { var: named, .. }) => assert_eq!(named, var),
                other => panic!("{var}={value}: {other:?}"),
            }
        }
        let mut e = srun_env("n[1-2]", "1(x2)", 0);
        e.insert("SLURM_STEP_NODELIST".into(), "n[1-2".into());
        assert!(matches!(topology_from_env(&e), Err(BootstrapError::UnbalancedBrackets { .. })));
    }

    #[test]
    fn inconsistent_variables_are_named() {
        for (var, value) in [
            ("SLURM_PROCID", "4"),
            ("SLURM_NTASKS", "5"),
            ("SLURM_STEP_TASKS_PER_NODE", "2(x3)"),
            ("SLURM_STEP_NUM_NODES", "3"),
            ("SLURM_LOCALID", "0"),
            ("SLURM_NODEID", "0"),
        ] {
            let mut e = srun_env("n[1-2]", "2(x2)", 3);
            e.insert(var.into(), value.into());
            match topology_from_env(&e) {
                Err(BootstrapError::Inconsistent { var: named, message }) => {
                    let expected = if var == "SLURM_NTASKS" { "SLURM_STEP_TASKS_PER_NODE" } else { var };
                    assert_eq!(named, expected, "{var}={value}: {message}");
                }
                other => panic!("{var}={value}: {other:?}"),
            }
        }
    }

    #[test]
    fn cyclic_distribution_is_detected() {
        // srun -m cyclic on 2 nodes × 2 tasks: rank 1 is task 0 of node 1.
        let mut e = srun_env("n[1-2]", "2(x2)", 1);
        e.insert("SLURM_NODEID".into(), "1".into());
        e.insert("SLURM_LOCALID".into(), "0".into());
        let err = topology_from_env(&e).unwrap_err();
        assert!(err.to_string().contains("--distribution=block"), "{err}");
    }

    #[test]
    fn hostfile_lines_ports_and_comments() {
        let text = "# cluster\nalpha:7000\n\n  beta   # no port\n10.0.0.3:7002\n[::1]:7003\n[fe80::1]\n";
        let s = topology_from_hostfile(text, 2, 4).unwrap();
        assert_eq!((s.process, s.processes, s.threads), (2, 5, 4));
        assert_eq!(s.hosts, ["alpha", "beta", "10.0.0.3", "[::1]", "[fe80::1]"]);
        assert_eq!(s.ports, [7000, DEFAULT_HOSTFILE_PORT + 1, 7002, 7003, DEFAULT_HOSTFILE_PORT + 4]);
        assert_eq!(s.addresses()[3], "[::1]:7003");
        let s = topology_from_hostfile("a\na\na\n", 0, 1).unwrap();
        assert_eq!(s.ports, [2101, 2102, 2103]);
    }

    #[test]
    fn hostfile_errors() {
        let line = |text: &str| match topology_from_hostfile(text, 0, 1) {
            Err(BootstrapError::InvalidHostfileLine { line, .. }) => line,
            other => panic!("{text:?}: {other:?}"),
        };
        assert_eq!(line("a:1\nb:notaport\n"), 2);
        assert_eq!(line("a:0"), 1);
        assert_eq!(line("a b"), 1);
        assert_eq!(line("::1:2101"), 1);
        assert_eq!(line(":2101"), 1);
        assert_eq!(line("[::1"), 1);
        assert_eq!(line("x\n# c\nh:5\nh:5"), 4);
        assert_eq!(topology_from_hostfile("# nothing\n\n", 0, 1), Err(BootstrapError::EmptyHostfile));
        assert_eq!(
            topology_from_hostfile("a\nb\n", 2, 1),
            Err(BootstrapError::ProcessOutOfRange { process: 2, processes: 2 })
        );
    }
}
