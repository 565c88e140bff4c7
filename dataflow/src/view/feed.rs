//! A contribution query whose success updates views on worker 0 itself ([`crate::Server::
//! submit_feeding`]): its rows become view records where they gather, and the views change
//! in the step the query ends, with no round trip through the submitting thread (which
//! costs two thread wake-ups, each about a tenth of a millisecond on a loaded machine).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc;

use arrow_array::RecordBatch;

use super::{InstalledView, ViewRecord};
use crate::error::RunError;

/// Turns a contribution query's result rows into view records (on worker 0).
pub trait Contribution: Send {
    /// Adds one result batch's records.
    fn add(&mut self, batch: &RecordBatch) -> Result<(), String>;
    /// The records, once every batch is in.
    fn finish(self: Box<Self>) -> Vec<ViewRecord>;
}

/// Records to feed to a view at a time, after which its input moves past that time.
pub struct ViewUpdate {
    /// The view.
    pub view: u64,
    /// Its time.
    pub time: u64,
    /// The records and their diffs.
    pub records: Vec<(ViewRecord, isize)>,
}

/// What a query's success does: its records join `own` with diff +1, and `others` are fed
/// with it. If the query fails, no view changes.
pub struct Feed {
    /// Makes the query's rows into records.
    pub contribution: Box<dyn Contribution>,
    /// The update the query's records belong to.
    pub own: ViewUpdate,
    /// Other views' updates, applied at the same moment.
    pub others: Vec<ViewUpdate>,
    /// Receives the query's records once they (and every update) are in the views' inputs,
    /// before the views have worked out their new contents (the query's `Done` says they
    /// have). Dropped unsent if no view changes.
    pub records: mpsc::Sender<Vec<ViewRecord>>,
    /// Whether the views may change, decided by the submitter while the query runs.
    pub gate: Gate,
}

const UNDECIDED: u8 = 0;
const OPEN: u8 = 1;
const SHUT: u8 = 2;

/// Whether a feeding query's records may change its views: its submitter decides while the
/// query runs (an ingest first stages its release's manifest), and worker 0 holds the records
/// of a query that ends before the decision. A shut gate fails the query (`Cancelled`) and
/// leaves every view as it was.
#[derive(Clone)]
pub struct Gate(Arc<AtomicU8>);

impl Gate {
    /// A gate and the decision that opens or shuts it (`wake`: wakes worker 0, which may be
    /// holding the records).
    pub(crate) fn pending(wake: Box<dyn Fn() + Send>) -> (Self, Decision) {
        let state = Arc::new(AtomicU8::new(UNDECIDED));
        (Self(state.clone()), Decision { state, wake })
    }

    /// Open (true), shut (false), or not decided yet (None).
    pub(crate) fn state(&self) -> Option<bool> {
        match self.0.load(Ordering::Acquire) {
            UNDECIDED => None,
            s => Some(s == OPEN),
        }
    }
}

/// The submitter's side of a [`Gate`]. Dropped undecided, it shuts the gate.
pub struct Decision {
    state: Arc<AtomicU8>,
    wake: Box<dyn Fn() + Send>,
}

impl Decision {
    /// Lets the query's records change its views (`true`), or not.
    pub fn decide(self, open: bool) {
        self.set(if open { OPEN } else { SHUT });
    }

    fn set(&self, state: u8) {
        if self.state.compare_exchange(UNDECIDED, state, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            (self.wake)();
        }
    }
}

impl Drop for Decision {
    fn drop(&mut self) {
        self.set(SHUT);
    }
}

/// The result batches a feeding query gathered on worker 0.
pub(crate) type Gathered = std::rc::Rc<std::cell::RefCell<Vec<RecordBatch>>>;

/// A feed applied: the (view, time) pairs it waits for.
pub(crate) struct Fed {
    waits: Vec<(u64, u64)>,
}

impl Feed {
    /// Converts the query's `batches` and applies every update (only views on worker 0 alone
    /// can be fed this way: no other worker has to see the update).
    pub(crate) fn apply(
        self,
        batches: Vec<RecordBatch>,
        views: &mut HashMap<u64, InstalledView>,
    ) -> Result<Fed, RunError> {
        let Feed { mut contribution, own, others, records: to, gate: _ } = self;
        for update in std::iter::once(&own).chain(&others) {
            match views.get(&update.view) {
                Some(view) if view.local => {}
                Some(_) => return Err(RunError::Internal(format!("view {} is not on worker 0 alone", update.view))),
                None => return Err(RunError::Internal(format!("view {} is not installed", update.view))),
            }
        }
        for batch in &batches {
            contribution.add(batch).map_err(RunError::Data)?;
        }
        let records = contribution.finish();
        let mut waits = Vec::with_capacity(1 + others.len());
        for update in others {
            waits.push((update.view, update.time));
            views.get_mut(&update.view).expect("checked").update(update.time, update.records);
        }
        waits.push((own.view, own.time));
        let entering = records.iter().map(|r| (r.clone(), 1));
        views.get_mut(&own.view).expect("checked").update(own.time, own.records.into_iter().chain(entering));
        // Nothing can fail from here: the views' new contents follow from their inputs.
        let _ = to.send(records);
        Ok(Fed { waits })
    }
}

impl Fed {
    /// Whether every view reflects its update (or is gone).
    pub(crate) fn reached(&self, views: &HashMap<u64, InstalledView>, dropped: &HashSet<u64>) -> bool {
        self.waits.iter().all(|(id, time)| views.get(id).map_or(dropped.contains(id), |v| !v.probe.less_equal(time)))
    }
}
