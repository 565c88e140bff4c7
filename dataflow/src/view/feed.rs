//! A contribution query whose success updates views on worker 0 itself ([`crate::Server::
//! submit_feeding`]): its rows become view records where they gather, and the views change
//! in the step the query ends, with no round trip through the submitting thread (which
//! costs two thread wake-ups, each about a tenth of a millisecond on a loaded machine).

use std::collections::{HashMap, HashSet};
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
    /// Receives the query's records once every view reflects them, just before the query's
    /// `Done`.
    pub records: mpsc::Sender<Vec<ViewRecord>>,
}

/// The result batches a feeding query gathered on worker 0.
pub(crate) type Gathered = std::rc::Rc<std::cell::RefCell<Vec<RecordBatch>>>;

/// A feed applied: the (view, time) pairs it waits for, and the records to hand back.
pub(crate) struct Fed {
    waits: Vec<(u64, u64)>,
    records: Vec<ViewRecord>,
    to: mpsc::Sender<Vec<ViewRecord>>,
}

impl Feed {
    /// Converts the query's `batches` and applies every update (only views on worker 0 alone
    /// can be fed this way: no other worker has to see the update).
    pub(crate) fn apply(
        self,
        batches: Vec<RecordBatch>,
        views: &mut HashMap<u64, InstalledView>,
    ) -> Result<Fed, RunError> {
        let Feed { mut contribution, own, others, records: to } = self;
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
        Ok(Fed { waits, records, to })
    }
}

impl Fed {
    /// Whether every view reflects its update (or is gone); if so, hands the records back.
    pub(crate) fn reached(&mut self, views: &HashMap<u64, InstalledView>, dropped: &HashSet<u64>) -> bool {
        let reached = self
            .waits
            .iter()
            .all(|(id, time)| views.get(id).map_or(dropped.contains(id), |v| !v.probe.less_equal(time)));
        if reached {
            let _ = self.to.send(std::mem::take(&mut self.records));
        }
        reached
    }
}
