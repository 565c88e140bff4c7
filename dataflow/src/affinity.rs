//! Worker threads of a single-process run that has exactly one CPU per worker (`-w` equal to
//! the CPUs it may use: the machine's, or a SLURM step's or cgroup's set) are pinned each to
//! its own CPU. Unpinned, the kernel tends to wake a worker on the CPU of the thread that
//! woke it and leave it queued there behind a busy worker while another CPU idles —
//! milliseconds lost at the start of every short query. Not pinned: runs with fewer workers
//! than CPUs (other work on the machine is better spread by the kernel), runs with more, runs
//! of several processes (which cannot see each other's choices), or `STARFLOW_PIN_WORKERS=0`.

use core_affinity::CoreId;

/// The CPU for each of `threads` workers of a single-process run, if they are to be pinned.
pub(crate) fn worker_cpus(threads: usize, single_process: bool) -> Option<Vec<CoreId>> {
    if !single_process || threads < 2 || std::env::var("STARFLOW_PIN_WORKERS").is_ok_and(|v| v == "0") {
        return None;
    }
    let cpus = core_affinity::get_core_ids()?;
    // The process's core count is kept before any of its threads is pinned to one.
    starflow_catalogs::cores();
    (cpus.len() == threads).then_some(cpus)
}

/// Pins the calling worker thread (worker `index` of this process) to its CPU.
pub(crate) fn pin(cpus: Option<&[CoreId]>, index: usize) {
    if let Some(cpu) = cpus.and_then(|c| c.get(index))
        && !core_affinity::set_for_current(*cpu)
    {
        tracing::debug!(worker = index, cpu = cpu.id, "could not pin the worker thread");
    }
}
