//! Maintained views: differential dataflows fed with the changes of each catalog release.
//!
//! A release changes whole partitions (files). What a partition contributes to a view is
//! computed once, when it enters (by an ordinary query over that partition), and fed as
//! records at the release's timestamp with diff +1; when the partition leaves, the same
//! records are fed with diff −1. So only the delta of a release flows through.
//!
//! - **Row views** (`SELECT … FROM c WHERE …`): a record is one output row. State: the rows.
//! - **Group-by views**: a record is (group key, (partition, partial aggregates of that group in
//!   that partition)). The dataflow arranges them by key and recomputes a key's aggregates
//!   from its partitions' partials, in partition order, whenever one of them changes. State:
//!   one record per (group, partition holding rows of that group) — not per input row — and
//!   the result is a function of the set of partials only, so a release followed by one that
//!   undoes it gives the earlier result bit for bit (no floating-point drift from the order
//!   of updates). MIN and MAX retract correctly for the same reason.

pub mod convert;
pub mod feed;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use differential_dataflow::VecCollection;
use differential_dataflow::input::{Input, InputSession};
use differential_dataflow::operators::arrange::arrangement::arrange_core;
use differential_dataflow::trace::implementations::{ValBatcher, ValBuilder, ValSpine};
use serde::{Deserialize, Serialize};
use timely::dataflow::ProbeHandle;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::Probe;
use timely::dataflow::operators::generic::Operator;

/// The bit of a partition id that marks a join view's second catalog.
pub const JOIN_RIGHT: u64 = 1 << 63;

/// An `f64` with a total order (IEEE `totalOrder`), so it can be part of a differential key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OrdF64(u64);

impl OrdF64 {
    /// Wraps a float.
    pub fn new(x: f64) -> Self {
        let bits = x.to_bits();
        Self(if bits >> 63 == 1 { !bits } else { bits | (1 << 63) })
    }

    /// The float.
    pub fn get(self) -> f64 {
        f64::from_bits(if self.0 >> 63 == 1 { self.0 & !(1 << 63) } else { !self.0 })
    }
}

/// One value of a row in a view.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Datum {
    /// SQL NULL.
    Null,
    /// A boolean.
    Bool(bool),
    /// Any signed integer type.
    Int(i64),
    /// Any unsigned integer type.
    UInt(u64),
    /// Any float type.
    Float(OrdF64),
    /// A string.
    Str(String),
}

impl Datum {
    /// A float datum.
    pub fn float(x: f64) -> Self {
        Datum::Float(OrdF64::new(x))
    }

    fn as_f64(&self) -> Option<f64> {
        match self {
            Datum::Int(v) => Some(*v as f64),
            Datum::UInt(v) => Some(*v as f64),
            Datum::Float(v) => Some(v.get()),
            _ => None,
        }
    }

    fn as_i64(&self) -> Option<i64> {
        match self {
            Datum::Int(v) => Some(*v),
            Datum::UInt(v) => i64::try_from(*v).ok(),
            _ => None,
        }
    }
}

/// A row of a view.
pub type Row = Vec<Datum>;

/// What one partition contributes: (key, (partition, payload)). Row views use the row as key
/// and an empty payload; group-by views the group key and the partial aggregates.
pub type ViewRecord = (Row, (u64, Row));

/// An aggregate of a group-by view and the partial columns it keeps per partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ViewAgg {
    /// `COUNT(*)` or `COUNT(x)`: [count].
    Count,
    /// `SUM(x)`: [count of values, sum].
    Sum,
    /// `AVG(x)`: [count of values, sum].
    Avg,
    /// `STDDEV(x)` (sample): [count of values, sum, sum of squares].
    Stddev,
    /// `MIN(x)`: [min].
    Min,
    /// `MAX(x)`: [max].
    Max,
}

impl ViewAgg {
    /// Partial columns per partition.
    pub fn width(self) -> usize {
        match self {
            ViewAgg::Count | ViewAgg::Min | ViewAgg::Max => 1,
            ViewAgg::Sum | ViewAgg::Avg => 2,
            ViewAgg::Stddev => 3,
        }
    }

    /// Folds `other`'s partials of a group into `into` (two parts of one partition).
    fn merge(self, into: &mut [Datum], other: &[Datum]) {
        match self {
            ViewAgg::Min | ViewAgg::Max => {
                let better = match (&into[0], &other[0]) {
                    (_, Datum::Null) => false,
                    (Datum::Null, _) => true,
                    (a, b) => (self == ViewAgg::Min) == (b < a),
                };
                if better {
                    into[0] = other[0].clone();
                }
            }
            _ => {
                for (a, b) in into.iter_mut().zip(other) {
                    *a = add(a, b);
                }
            }
        }
    }

    /// Combines the partials of one group, one slice per partition, in partition order.
    fn combine<'a>(self, partials: impl Iterator<Item = &'a [Datum]>) -> Datum {
        match self {
            ViewAgg::Count => Datum::Int(partials.filter_map(|p| p[0].as_i64()).sum()),
            ViewAgg::Min => partials.map(|p| p[0].clone()).filter(|d| *d != Datum::Null).min().unwrap_or(Datum::Null),
            ViewAgg::Max => partials.map(|p| p[0].clone()).filter(|d| *d != Datum::Null).max().unwrap_or(Datum::Null),
            ViewAgg::Sum => {
                let (mut n, mut int, mut float, mut is_float) = (0i64, 0i64, 0f64, false);
                for p in partials {
                    n += p[0].as_i64().unwrap_or(0);
                    match &p[1] {
                        Datum::Null => {}
                        Datum::Float(v) => {
                            is_float = true;
                            float += v.get();
                        }
                        d => match d.as_i64().and_then(|v| int.checked_add(v)) {
                            Some(s) => int = s,
                            None => {
                                is_float = true;
                                float += d.as_f64().unwrap_or(0.0);
                            }
                        },
                    }
                }
                match (n, is_float) {
                    (0, _) => Datum::Null,
                    (_, true) => Datum::float(float + int as f64),
                    (_, false) => Datum::Int(int),
                }
            }
            ViewAgg::Avg | ViewAgg::Stddev => {
                let (mut n, mut s, mut ss) = (0i64, 0f64, 0f64);
                for p in partials {
                    n += p[0].as_i64().unwrap_or(0);
                    s += p[1].as_f64().unwrap_or(0.0);
                    if self == ViewAgg::Stddev {
                        ss += p[2].as_f64().unwrap_or(0.0);
                    }
                }
                let n_f = n as f64;
                match self {
                    ViewAgg::Avg if n > 0 => Datum::float(s / n_f),
                    ViewAgg::Stddev if n > 1 => Datum::float(((ss - s * s / n_f) / (n_f - 1.0)).max(0.0).sqrt()),
                    _ => Datum::Null,
                }
            }
        }
    }
}

/// The sum of two partial counts or sums (NULL: no value yet); integers that would overflow
/// add as floats, as [`ViewAgg::combine`] does.
fn add(a: &Datum, b: &Datum) -> Datum {
    match (a, b) {
        (Datum::Null, x) | (x, Datum::Null) => x.clone(),
        (Datum::Int(x), Datum::Int(y)) if x.checked_add(*y).is_some() => Datum::Int(x + y),
        (Datum::UInt(x), Datum::UInt(y)) if x.checked_add(*y).is_some() => Datum::UInt(x + y),
        _ => Datum::float(a.as_f64().unwrap_or(0.0) + b.as_f64().unwrap_or(0.0)),
    }
}

/// Where a view's output column comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutputColumn {
    /// The i-th group key.
    Key(usize),
    /// The j-th aggregate.
    Agg(usize),
}

/// What a view computes from its records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ViewKind {
    /// The records' keys are the output rows.
    Rows,
    /// `ORDER BY … LIMIT k`: each partition contributes its own top k (output columns, then
    /// the sort key values); the view keeps the best k of those.
    TopK {
        /// Rows kept.
        k: u64,
        /// Output columns (the sort key values follow them in a record).
        width: usize,
        /// Per sort key: descending, nulls first.
        keys: Vec<(bool, bool)>,
    },
    /// Two catalogs joined on keys: records of the second carry [`JOIN_RIGHT`] in their
    /// partition id; output columns are (side, column) of the joined rows.
    Join {
        /// Where each output column comes from.
        output: Vec<(usize, usize)>,
    },
    /// Group-by: aggregates combined per key, output columns assembled from keys and aggregates.
    Aggregate {
        /// The aggregates, in payload order.
        aggs: Vec<ViewAgg>,
        /// The output row.
        output: Vec<OutputColumn>,
    },
}

impl ViewKind {
    /// The best k rows of a top-k view from its partitions' candidates (ties broken by the
    /// whole row, so the result depends only on the candidates).
    pub fn top_rows(&self, records: &[(&(u64, Row), isize)]) -> Vec<Row> {
        let ViewKind::TopK { k, width, keys } = self else { return vec![] };
        let mut rows: Vec<&Row> = records
            .iter()
            .filter(|(_, diff)| *diff > 0)
            .flat_map(|((_, row), diff)| std::iter::repeat_n(row, *diff as usize))
            .collect();
        let order = |a: &&Row, b: &&Row| {
            for (i, (descending, nulls_first)) in keys.iter().enumerate() {
                let (x, y) = (&a[width + i], &b[width + i]);
                let o = match (x, y) {
                    (Datum::Null, Datum::Null) => std::cmp::Ordering::Equal,
                    (Datum::Null, _) => {
                        if *nulls_first {
                            std::cmp::Ordering::Less
                        } else {
                            std::cmp::Ordering::Greater
                        }
                    }
                    (_, Datum::Null) => {
                        if *nulls_first {
                            std::cmp::Ordering::Greater
                        } else {
                            std::cmp::Ordering::Less
                        }
                    }
                    _ if *descending => y.cmp(x),
                    _ => x.cmp(y),
                };
                if o != std::cmp::Ordering::Equal {
                    return o;
                }
            }
            a.cmp(b)
        };
        rows.sort_by(order);
        rows.into_iter().take(*k as usize).map(|r| r[..*width].to_vec()).collect()
    }

    /// Folds `other`'s partials into `into`: a group-by view's records of one group from two
    /// parts of one partition (read by different workers), merged in the parts' order so that
    /// the partition's record is the same however its parts were shared out.
    pub fn merge_partials(&self, into: &mut Row, other: &Row) {
        let ViewKind::Aggregate { aggs, .. } = self else { return };
        let mut offset = 0;
        for agg in aggs {
            let range = offset..offset + agg.width();
            agg.merge(&mut into[range.clone()], &other[range]);
            offset += agg.width();
        }
    }

    /// The output row of one group from its (partition, partials) records (sorted by partition).
    pub fn group_row(&self, key: &Row, records: &[(&(u64, Row), isize)]) -> Option<Row> {
        let ViewKind::Aggregate { aggs, output } = self else { return None };
        let live: Vec<&Row> = records
            .iter()
            .filter(|(_, diff)| *diff > 0)
            .flat_map(|((_, partials), diff)| std::iter::repeat_n(partials, *diff as usize))
            .collect();
        if live.is_empty() {
            return None;
        }
        let mut offsets = Vec::with_capacity(aggs.len());
        let mut offset = 0;
        for agg in aggs {
            offsets.push(offset);
            offset += agg.width();
        }
        let values: Vec<Datum> = aggs
            .iter()
            .zip(&offsets)
            .map(|(agg, &o)| agg.combine(live.iter().map(|p| &p[o..o + agg.width()])))
            .collect();
        Some(
            output
                .iter()
                .map(|c| match c {
                    OutputColumn::Key(i) => key[*i].clone(),
                    OutputColumn::Agg(j) => values[*j].clone(),
                })
                .collect(),
        )
    }
}

/// Changes of a view: (row, release, diff).
pub type Changes = Vec<(Row, u64, isize)>;

/// The current contents of a view on process 0 (row → multiplicity), and its subscribers.
#[derive(Default)]
pub struct ViewContents {
    inner: Mutex<Contents>,
}

#[derive(Default)]
struct Contents {
    rows: BTreeMap<Row, isize>,
    subscribers: Vec<std::sync::mpsc::Sender<Changes>>,
}

impl ViewContents {
    /// Reads the current rows.
    pub fn with_rows<T>(&self, f: impl FnOnce(&BTreeMap<Row, isize>) -> T) -> T {
        f(&self.inner.lock().expect("view contents lock").rows)
    }

    /// The current rows, and every change after them (`SUBSCRIBE`); changes stop when the
    /// receiver is dropped or the view is.
    pub fn subscribe(&self) -> (Vec<(Row, isize)>, std::sync::mpsc::Receiver<Changes>) {
        let mut inner = self.inner.lock().expect("view contents lock");
        let (tx, rx) = std::sync::mpsc::channel();
        inner.subscribers.push(tx);
        (inner.rows.iter().map(|(r, n)| (r.clone(), *n)).collect(), rx)
    }

    /// Applies changes and tells the subscribers, under one lock (so a subscriber sees every
    /// change after its starting contents, and no other).
    fn apply(&self, changes: Changes) {
        let mut inner = self.inner.lock().expect("view contents lock");
        for (row, _time, diff) in &changes {
            *inner.rows.entry(row.clone()).or_insert(0) += diff;
        }
        inner.rows.retain(|_, n| *n != 0);
        inner.subscribers.retain(|s| s.send(changes.clone()).is_ok());
    }
}

/// A view's contents, shared by worker 0 and the statements that read them.
pub type Snapshot = Arc<ViewContents>;

/// A view installed on one worker.
pub(crate) struct InstalledView {
    input: InputSession<u64, ViewRecord, isize>,
    /// Whether the view runs on worker 0's own single-worker computation
    /// ([`ViewKind::on_first_worker`]).
    pub local: bool,
    pub probe: ProbeHandle<u64>,
    pub dataflow: usize,
    /// The last time fed.
    fed: Option<u64>,
}

impl InstalledView {
    /// Feeds `records` at `time` and advances the view's input past it.
    pub fn update(&mut self, time: u64, records: impl IntoIterator<Item = (ViewRecord, isize)>) {
        self.input.advance_to(time);
        for (record, diff) in records {
            self.input.update(record, diff);
        }
        self.input.advance_to(time + 1);
        self.input.flush();
        self.fed = Some(time);
    }

    /// Whether the view's contents do not reflect its last update yet.
    pub fn behind(&self) -> bool {
        self.fed.is_some_and(|t| self.probe.less_equal(&t))
    }
}

impl ViewKind {
    /// Whether the view runs on worker 0 alone, in a single-worker computation of its own:
    /// group-by and top-k views, whose state is one record per (group, partition) or one
    /// partition's top k, small enough for one worker. An update of such a view involves no
    /// other worker: no progress is exchanged, no worker is woken.
    pub fn on_first_worker(&self) -> bool {
        matches!(self, ViewKind::Aggregate { .. } | ViewKind::TopK { .. })
    }
}

/// Worker 0's single-worker computation for the views on worker 0 alone, stepped by worker 0
/// itself when one of them is behind.
pub(crate) fn local_worker() -> timely::worker::Worker {
    let allocator = timely::communication::Allocator::Thread(Default::default());
    timely::worker::Worker::new(timely::WorkerConfig::default(), allocator, Some(std::time::Instant::now()))
}

/// Steps `local` until none of its views is behind (at most `steps` steps; whatever is left
/// is stepped again on the next turn of the worker's loop).
pub(crate) fn settle(local: &mut timely::worker::Worker, views: &HashMap<u64, InstalledView>, steps: usize) {
    if !views.values().any(|v| v.local && v.behind()) {
        return;
    }
    let _span = tracing::debug_span!("settle").entered();
    for _ in 0..steps {
        if !views.values().any(|v| v.local && v.behind()) {
            return;
        }
        local.step();
    }
}

/// The output rows of a group-by or top-k view: its records reduced by key on worker 0.
fn reduce_on_first_worker<'scope>(
    records: VecCollection<'scope, u64, ViewRecord, isize>,
    name: &str,
    kind: ViewKind,
) -> VecCollection<'scope, u64, Row, isize> {
    let arranged = arrange_core::<_, _, ValBatcher<Row, (u64, Row), u64, isize>, ValSpine<Row, (u64, Row), u64, isize>>(
        records.inner,
        Exchange::new(|_: &(ViewRecord, u64, isize)| 0u64),
        &format!("Arrange: {name}"),
        ValBatcher::new,
    );
    arranged
        .reduce_abelian::<_, ValBuilder<_, _, _, _>, ValSpine<Row, Row, u64, isize>, _, _>(
            name,
            move |key: &Row, input: &[(&(u64, Row), isize)], output: &mut Vec<(Row, isize)>| match &kind {
                ViewKind::TopK { .. } => output.extend(kind.top_rows(input).into_iter().map(|row| (row, 1))),
                _ => output.extend(kind.group_row(key, input).map(|row| (row, 1))),
            },
            |vec, key, upds| {
                vec.clear();
                vec.extend(upds.drain(..).map(|(v, t, r)| ((key.clone(), v), t, r)));
            },
        )
        .as_collection(|_key: &Row, row: &Row| row.clone())
}

/// Builds the view's dataflow on this worker; its output gathers on worker 0 into `snapshot`.
pub(crate) fn install_view(
    worker: &mut timely::worker::Worker,
    name: &str,
    kind: &ViewKind,
    start: u64,
    snapshot: Snapshot,
) -> InstalledView {
    let dataflow = worker.next_dataflow_index();
    let probe = ProbeHandle::new();
    let kind = kind.clone();
    let mut input = worker.dataflow_named::<u64, _, _>(name, |scope| {
        let (input, records) = scope.new_collection::<ViewRecord, isize>();
        let output = match &kind {
            ViewKind::Rows => records.map(|(row, _)| row).consolidate(),
            ViewKind::Join { output } => {
                let output = output.clone();
                let side = |right: bool| {
                    records
                        .clone()
                        .filter(move |(_, (p, _))| (p & JOIN_RIGHT != 0) == right)
                        .map(|(key, (_, columns))| (key, columns))
                };
                side(false).join(side(true)).map(move |(_key, (l, r))| {
                    output.iter().map(|&(s, i)| if s == 0 { l[i].clone() } else { r[i].clone() }).collect()
                })
            }
            ViewKind::TopK { .. } => reduce_on_first_worker(records, "ViewTopK", kind.clone()),
            ViewKind::Aggregate { .. } => reduce_on_first_worker(records, "ViewAggregate", kind.clone()),
        };
        output
            .inner
            .unary::<timely::container::CapacityContainerBuilder<Vec<(Row, u64, isize)>>, _, _, _>(
                Exchange::new(|_: &(Row, u64, isize)| 0u64),
                "ViewSnapshot",
                move |_cap, _info| {
                    move |input, _output| input.for_each(|_cap, data| snapshot.apply(std::mem::take(data)))
                },
            )
            .probe_with(&probe);
        input
    });
    input.advance_to(start);
    input.flush();
    InstalledView { input, local: kind.on_first_worker(), probe, dataflow, fed: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_keep_their_total_order() {
        let xs = [f64::NEG_INFINITY, -2.5, -0.0, 0.0, 1e-300, 3.0, f64::INFINITY];
        for w in xs.windows(2) {
            assert!(OrdF64::new(w[0]) < OrdF64::new(w[1]), "{w:?}");
        }
        for x in xs {
            assert_eq!(OrdF64::new(x).get().to_bits(), x.to_bits());
        }
    }

    #[test]
    fn top_k_orders_like_sql_and_breaks_ties_by_row() {
        // Rows: [id, key]; ORDER BY key DESC (NULLs first, as PostgreSQL) LIMIT 3.
        let kind = ViewKind::TopK { k: 3, width: 1, keys: vec![(true, true)] };
        let r = |id: i64, key: Datum| (id as u64, vec![Datum::Int(id), key]);
        let (a, b, c, d) =
            (r(1, Datum::float(2.0)), r(2, Datum::Null), r(3, Datum::float(5.0)), r(4, Datum::float(5.0)));
        let top = kind.top_rows(&[(&a, 1), (&b, 1), (&c, 1), (&d, 1)]);
        assert_eq!(top, vec![vec![Datum::Int(2)], vec![Datum::Int(3)], vec![Datum::Int(4)]]);
        // Ascending, NULLs last.
        let kind = ViewKind::TopK { k: 2, width: 1, keys: vec![(false, false)] };
        assert_eq!(kind.top_rows(&[(&b, 1), (&a, 1), (&c, 1)]), vec![vec![Datum::Int(1)], vec![Datum::Int(3)]]);
    }

    #[test]
    fn groups_combine_partials_in_partition_order() {
        let kind = ViewKind::Aggregate {
            aggs: vec![ViewAgg::Count, ViewAgg::Sum, ViewAgg::Avg, ViewAgg::Stddev, ViewAgg::Min, ViewAgg::Max],
            output: vec![
                OutputColumn::Key(0),
                OutputColumn::Agg(0),
                OutputColumn::Agg(1),
                OutputColumn::Agg(2),
                OutputColumn::Agg(3),
                OutputColumn::Agg(4),
                OutputColumn::Agg(5),
            ],
        };
        // Partition 1: values 1, 2; partition 2: value 6 (and a NULL counted by COUNT(*)).
        let p1 = (
            1u64,
            vec![
                Datum::Int(2),
                Datum::Int(2),
                Datum::Int(3),
                Datum::Int(2),
                Datum::float(3.0),
                Datum::Int(2),
                Datum::float(3.0),
                Datum::float(5.0),
                Datum::Int(1),
                Datum::Int(2),
            ],
        );
        let p2 = (
            2u64,
            vec![
                Datum::Int(2),
                Datum::Int(1),
                Datum::Int(6),
                Datum::Int(1),
                Datum::float(6.0),
                Datum::Int(1),
                Datum::float(6.0),
                Datum::float(36.0),
                Datum::Int(6),
                Datum::Int(6),
            ],
        );
        let key = vec![Datum::Str("g".into())];
        let row = kind.group_row(&key, &[(&p1, 1), (&p2, 1)]).expect("a row");
        assert_eq!(row[..3], [Datum::Str("g".into()), Datum::Int(4), Datum::Int(9)]);
        assert_eq!(row[3], Datum::float(3.0));
        assert_eq!(row[4], Datum::float(((41.0f64 - 81.0 / 3.0) / 2.0).sqrt()));
        assert_eq!(row[5..], [Datum::Int(1), Datum::Int(6)]);
        // Retracting partition 2 leaves partition 1 alone; retracting both removes the group.
        let row = kind.group_row(&key, &[(&p1, 1), (&p2, 0)]).expect("a row");
        assert_eq!(row[1], Datum::Int(2));
        assert_eq!(row[6], Datum::Int(2));
        assert!(kind.group_row(&key, &[]).is_none());
        // Partition 1 as two parts merges into its one record.
        let mut part = vec![
            Datum::Int(1),
            Datum::Int(1),
            Datum::Int(1),
            Datum::Int(1),
            Datum::float(1.0),
            Datum::Int(1),
            Datum::float(1.0),
            Datum::float(1.0),
            Datum::Int(1),
            Datum::Int(1),
        ];
        let other = vec![
            Datum::Int(1),
            Datum::Int(1),
            Datum::Int(2),
            Datum::Int(1),
            Datum::float(2.0),
            Datum::Int(1),
            Datum::float(2.0),
            Datum::float(4.0),
            Datum::Int(2),
            Datum::Int(2),
        ];
        kind.merge_partials(&mut part, &other);
        assert_eq!(part, p1.1);
        // NULLs (no value in a part) and integer sums past i64.
        let (mut a, b) = (vec![Datum::Null; 10], p2.1.clone());
        kind.merge_partials(&mut a, &b);
        assert_eq!(a, b);
        let mut big = vec![Datum::Int(i64::MAX); 10];
        kind.merge_partials(&mut big, &vec![Datum::Int(1); 10]);
        assert_eq!(big[0], Datum::float(i64::MAX as f64 + 1.0));
        assert_eq!(big[8..], [Datum::Int(1), Datum::Int(i64::MAX)]);
    }
}
