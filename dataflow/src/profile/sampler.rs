//! Samples this process's CPU, memory and bytes sent while a profiled query runs.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::Sample;
use crate::system::cpu_seconds;

/// Time between samples.
const EVERY: Duration = Duration::from_millis(20);

/// A thread taking [`Sample`]s until stopped.
pub(crate) struct Sampler {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    thread: Option<JoinHandle<()>>,
}

impl Sampler {
    /// Starts sampling; times are from `start`.
    pub fn start(start: Instant, bytes_sent: Arc<AtomicU64>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let samples: Arc<Mutex<Vec<Sample>>> = Arc::default();
        let (flag, out) = (stop.clone(), samples.clone());
        let thread = std::thread::Builder::new()
            .name("starflow-sampler".into())
            .spawn(move || {
                let mut last = (start.elapsed().as_secs_f64(), cpu_seconds());
                let base = bytes_sent.load(Ordering::Relaxed);
                loop {
                    let sample = take(start, &mut last, &bytes_sent, base);
                    out.lock().expect("samples lock").push(sample);
                    if flag.load(Ordering::Relaxed) {
                        break;
                    }
                    std::thread::park_timeout(EVERY);
                }
            })
            .ok();
        Self { stop, samples, thread }
    }

    /// Stops sampling (after one last sample) and returns the samples.
    pub fn finish(mut self) -> Vec<Sample> {
        self.stop_thread();
        std::mem::take(&mut *self.samples.lock().expect("samples lock"))
    }

    fn stop_thread(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

impl Drop for Sampler {
    /// A query that never finished installing still stops its sampler.
    fn drop(&mut self) {
        self.stop_thread();
    }
}

fn take(start: Instant, last: &mut (f64, f64), bytes_sent: &AtomicU64, base: u64) -> Sample {
    let (t, cpu) = (start.elapsed().as_secs_f64(), cpu_seconds());
    let busy = if t > last.0 { (cpu - last.1) / (t - last.0) } else { 0.0 };
    *last = (t, cpu);
    Sample {
        t_ms: t * 1e3,
        cpu: busy.max(0.0),
        rss_mib: crate::system::ProcessInfo::current().rss_mib,
        bytes_sent: bytes_sent.load(Ordering::Relaxed).saturating_sub(base),
    }
}
