//! A thread kept for the small jobs that run beside an ingest (reading its new files'
//! footers while the others are looked at) or after its reply (reserving the next manifest
//! file): starting a thread costs about a tenth of a millisecond here, more than such a job's
//! share of an ingest.

use std::sync::Mutex;
use std::sync::mpsc;

use starflow_catalogs::parquet::Job;

/// One kept thread and its queue of jobs.
pub struct Helper {
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
}

impl Helper {
    /// Starts the thread (named `name`); without one, jobs get a thread each.
    pub fn start(name: &str) -> Self {
        let (tx, rx) = mpsc::channel::<Job>();
        let started = std::thread::Builder::new().name(name.to_string()).spawn(move || {
            for job in rx {
                job();
            }
        });
        Self { jobs: Mutex::new(started.ok().map(|_| tx)) }
    }

    /// Runs `job` on the kept thread (on a new one if that thread is gone); its result
    /// arrives on the receiver, which reports a disconnection if the job panicked.
    pub fn run<T: Send + 'static>(&self, job: impl FnOnce() -> T + Send + 'static) -> mpsc::Receiver<T> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.submit(Box::new(move || {
            let _ = tx.send(job());
        }));
        rx
    }

    /// Runs `job` on the kept thread (on a new one if that thread is gone).
    pub fn submit(&self, job: Job) {
        let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        let job = match jobs.as_ref() {
            Some(queue) => match queue.send(job) {
                Ok(()) => return,
                Err(mpsc::SendError(job)) => {
                    *jobs = None;
                    job
                }
            },
            None => job,
        };
        if let Err(e) = std::thread::Builder::new().spawn(job) {
            tracing::warn!(error = %e, "cannot start a thread for a helper job");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Helper;

    #[test]
    fn jobs_run_in_order_and_a_panicking_one_does_not_stop_the_next() {
        let helper = Helper::start("test helper");
        let results: Vec<_> = (0..5).map(|i| helper.run(move || i * 2)).collect();
        assert_eq!(results.into_iter().map(|r| r.recv().unwrap()).collect::<Vec<_>>(), vec![0, 2, 4, 6, 8]);
        let panicked = helper.run(|| -> u32 { panic!("a job that fails") });
        assert!(panicked.recv().is_err(), "a panicked job reports a disconnection");
        assert_eq!(helper.run(|| 7).recv().unwrap(), 7, "later jobs still run");
        assert_eq!(helper.run(|| 8).recv().unwrap(), 8);
    }
}
