//! Crossmatch (`XMATCH`): for each left row, its k nearest right rows within the radius.
//!
//! Rows meet by HEALPix pixel at the spec's order: a left row goes to the worker of its pixel;
//! a right row to the workers of every pixel its radius reaches (cdshealpix's cone coverage,
//! which never misses a pixel), once per worker. A left row's matches are all within its
//! radius, so they all reach its pixel, and its worker finds them: nothing is missed at pixel
//! edges, and no pair is found twice. Each worker indexes the right rows it received
//! ([`zones::Zones`]) and, once the right side is complete, matches left batches as they come,
//! so only the right side is held.

mod zones;

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{Array, ArrayRef, Float64Array, RecordBatch, RecordBatchOptions, UInt32Array, UInt64Array};
use arrow_schema::{ArrowError, DataType};
use starflow_dataflow::plan::{CrossmatchSpec, ROW_ID};
use starflow_dataflow::timely::dataflow::channels::pact::{Exchange, Pipeline};
use starflow_dataflow::timely::dataflow::operators::generic::Operator;
use starflow_dataflow::{Batch, BatchStream, RenderContext, RunError};

use crate::aggregate::splitmix64;
use zones::Zones;

/// Renders the routing of both sides and the matching.
pub(crate) fn render_crossmatch<'s>(
    ctx: &RenderContext<'s>,
    left: BatchStream<'s>,
    right: BatchStream<'s>,
    spec: &CrossmatchSpec,
) -> BatchStream<'s> {
    let peers = ctx.scope.peers();
    let left = route(ctx, left, spec, Side::Left, peers);
    let right = route(ctx, right, spec, Side::Right, peers);
    let (spec, errors) = (spec.clone(), ctx.errors.clone());
    let name = format!("Crossmatch[{}\", k={}]", spec.radius_arcsec, spec.k);
    left.binary_frontier(
        right,
        Exchange::new(|b: &Batch| b.route),
        Exchange::new(|b: &Batch| b.route),
        &name,
        move |cap, _info| {
            let mut cap = Some(cap);
            let mut right_batches: Vec<Batch> = Vec::new();
            let mut index: Option<Zones> = None;
            let mut waiting: Vec<Batch> = Vec::new();
            move |(left_in, left_frontier), (right_in, right_frontier), output| {
                right_in.for_each(|_cap, data| right_batches.append(data));
                left_in.for_each(|_cap, data| waiting.append(data));
                if index.is_none() && right_frontier.is_empty() {
                    index = match build_index(&spec, &right_batches) {
                        Ok(z) => Some(z),
                        Err(source) => {
                            errors.record(RunError::Arrow { context: "crossmatch index".into(), source });
                            Some(Zones::new(0.0, std::iter::empty()))
                        }
                    };
                }
                if let (Some(zones), Some(c)) = (&index, &cap) {
                    let mut session = output.session(c);
                    for batch in waiting.drain(..) {
                        if errors.failed() {
                            continue;
                        }
                        let _span = starflow_dataflow::compile::exchanged("Crossmatch", std::slice::from_ref(&batch));
                        match matches(&spec, zones, &right_batches, &batch) {
                            Ok(Some(out)) => session.give(Batch::new(out, batch.seq)),
                            Ok(None) => {}
                            Err(source) => errors.record(RunError::Arrow { context: "crossmatch".into(), source }),
                        }
                    }
                }
                if left_frontier.is_empty() && right_frontier.is_empty() {
                    cap = None;
                    right_batches.clear();
                    index = None;
                }
            }
        },
    )
}

#[derive(Clone, Copy, PartialEq)]
enum Side {
    Left,
    Right,
}

/// Splits each batch by the workers its rows go to (every row to worker 0 when alone).
fn route<'s>(
    ctx: &RenderContext<'s>,
    input: BatchStream<'s>,
    spec: &CrossmatchSpec,
    side: Side,
    peers: usize,
) -> BatchStream<'s> {
    let (spec, errors) = (spec.clone(), ctx.errors.clone());
    let name = format!("XmatchRoute[{}]", if side == Side::Left { "left" } else { "right" });
    input.unary(Pipeline, &name, move |_cap, _info| {
        move |input, output| {
            input.for_each(|cap, data| {
                let mut session = output.session(&cap);
                for batch in data.drain(..) {
                    match split(&spec, side, peers, &batch) {
                        Ok(parts) => session.give_iterator(parts.into_iter()),
                        Err(source) => errors.record(RunError::Arrow { context: "crossmatch routing".into(), source }),
                    }
                }
            });
        }
    })
}

/// The worker of a pixel.
fn worker_of(pixel: u64, peers: usize) -> usize {
    (splitmix64(pixel) % peers as u64) as usize
}

/// One batch per destination worker (rows without a position go nowhere).
fn split(spec: &CrossmatchSpec, side: Side, peers: usize, batch: &Batch) -> Result<Vec<Batch>, ArrowError> {
    let (ra_i, dec_i) = if side == Side::Left { spec.left_radec } else { spec.right_radec };
    let data = batch.data.as_ref();
    let ra = as_f64(data.column(ra_i))?;
    let dec = as_f64(data.column(dec_i))?;
    let layer = cdshealpix::nested::get(spec.order);
    let radius = (spec.radius_arcsec / 3600.0).to_radians();
    let mut rows: Vec<Vec<u32>> = vec![Vec::new(); peers];
    let mut to: Vec<usize> = Vec::with_capacity(4);
    for i in 0..data.num_rows() {
        if ra.is_null(i) || dec.is_null(i) {
            continue;
        }
        let (a, d) = (ra.value(i), dec.value(i));
        if !a.is_finite() || !d.is_finite() || d.abs() > 90.0 {
            continue;
        }
        let (lon, lat) = (a.rem_euclid(360.0).to_radians(), d.to_radians());
        to.clear();
        if peers == 1 {
            to.push(0);
        } else if side == Side::Left {
            to.push(worker_of(layer.hash(lon, lat), peers));
        } else {
            let own = layer.hash(lon, lat);
            if inside_own_pixel(layer, own, a, d, spec.radius_arcsec / 3600.0) {
                to.push(worker_of(own, peers));
            } else {
                for pixel in cdshealpix::nested::cone_coverage_approx_flat(spec.order, lon, lat, radius) {
                    let w = worker_of(pixel, peers);
                    if !to.contains(&w) {
                        to.push(w);
                    }
                }
            }
        }
        for &w in &to {
            rows[w].push(i as u32);
        }
    }
    let mut out = Vec::new();
    for (w, rows) in rows.into_iter().enumerate().filter(|(_, r)| !r.is_empty()) {
        let part = if rows.len() == data.num_rows() {
            data.clone()
        } else {
            let indices = UInt32Array::from(rows);
            let columns =
                data.columns().iter().map(|c| arrow_select::take::take(c, &indices, None)).collect::<Result<_, _>>()?;
            RecordBatch::try_new_with_options(
                data.schema(),
                columns,
                &RecordBatchOptions::new().with_row_count(Some(indices.len())),
            )?
        };
        out.push(Batch::new(part, batch.seq).routed(w as u64));
    }
    Ok(out)
}

/// True when the circle of `radius` degrees around (ra, dec) lies inside the pixel `own`
/// (a sufficient test; otherwise the exact cone coverage decides). HEALPix cells are convex and
/// their edges nearly straight at the radius' scale: if an edge came within the radius, one of
/// 4 points on a circle of radius √2·r, 90° apart, would lie beyond it, in another pixel (10 %
/// more for the edges' curvature and the flat offsets). Near the poles, where flat offsets
/// fail, it says no.
pub(crate) fn inside_own_pixel(layer: &cdshealpix::nested::Layer, own: u64, ra: f64, dec: f64, radius: f64) -> bool {
    let reach = 1.1 * std::f64::consts::SQRT_2 * radius;
    if dec.abs() + reach > 85.0 || reach > 0.5 {
        return false;
    }
    let across = reach / dec.to_radians().cos();
    [(across, 0.0), (-across, 0.0), (0.0, reach), (0.0, -reach)]
        .iter()
        .all(|(da, dd)| layer.hash((ra + da).rem_euclid(360.0).to_radians(), (dec + dd).to_radians()) == own)
}

fn as_f64(column: &ArrayRef) -> Result<Float64Array, ArrowError> {
    let c = arrow_cast::cast(column, &DataType::Float64)?;
    Ok(c.as_primitive::<Float64Type>().clone())
}

fn build_index(spec: &CrossmatchSpec, batches: &[Batch]) -> Result<Zones, ArrowError> {
    let (ra_i, dec_i) = spec.right_radec;
    let mut rows = Vec::new();
    for (b, batch) in batches.iter().enumerate() {
        let (ra, dec) = (as_f64(batch.data.column(ra_i))?, as_f64(batch.data.column(dec_i))?);
        for i in 0..batch.num_rows() {
            rows.push((ra.value(i), dec.value(i), b as u32, i as u32));
        }
    }
    Ok(Zones::new(spec.radius_arcsec / 3600.0, rows.into_iter()))
}

/// The rows' identities in a self-match (the scans' row ids).
fn identity(batch: &RecordBatch) -> Option<&UInt64Array> {
    batch.column_by_name(ROW_ID)?.as_any().downcast_ref::<UInt64Array>()
}

/// The matches of one left batch: (left row, right batch, right row, distance) for each
/// left row's k nearest, nearest first, as output rows.
fn matches(
    spec: &CrossmatchSpec,
    zones: &Zones,
    right: &[Batch],
    left: &Batch,
) -> Result<Option<RecordBatch>, ArrowError> {
    let data = left.data.as_ref();
    let (ra, dec) = (as_f64(data.column(spec.left_radec.0))?, as_f64(data.column(spec.left_radec.1))?);
    let left_id = identity(data);
    let right_ids: Vec<Option<&UInt64Array>> = right.iter().map(|b| identity(&b.data)).collect();
    let mut left_rows: Vec<u32> = Vec::new();
    let mut right_rows: Vec<(usize, usize)> = Vec::new();
    let mut dist: Vec<f64> = Vec::new();
    let mut best: Vec<(f64, u32, u32)> = Vec::with_capacity(spec.k.min(64) + 1);
    for i in 0..data.num_rows() {
        best.clear();
        let me = left_id.map(|ids| ids.value(i));
        zones.search(ra.value(i), dec.value(i), |e, d| {
            if let (Some(me), Some(Some(ids))) = (me, right_ids.get(e.batch as usize))
                && ids.value(e.row as usize) == me
            {
                return; // a row is not its own match
            }
            let candidate = (d, e.batch, e.row);
            if best.len() == spec.k && best.last().is_some_and(|worst| !closer(&candidate, worst)) {
                return;
            }
            let at = best.partition_point(|b| closer(b, &candidate));
            best.insert(at, candidate);
            best.truncate(spec.k);
        });
        for &(d, b, r) in &best {
            left_rows.push(i as u32);
            right_rows.push((b as usize, r as usize));
            dist.push(d * 3600.0);
        }
    }
    if left_rows.is_empty() {
        return Ok(None);
    }
    let n = left_rows.len();
    let left_rows = UInt32Array::from(left_rows);
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(spec.schema.fields().len());
    for &c in &spec.left_out {
        columns.push(arrow_select::take::take(data.column(c), &left_rows, None)?);
    }
    for &c in &spec.right_out {
        let sources: Vec<&dyn Array> = right.iter().map(|b| b.data.column(c).as_ref()).collect();
        columns.push(arrow_select::interleave::interleave(&sources, &right_rows)?);
    }
    columns.push(Arc::new(Float64Array::from(dist)));
    // The inputs' types may differ from the output's only in nullability.
    let columns = columns
        .into_iter()
        .zip(spec.schema.fields())
        .map(|(c, f)| if c.data_type() == f.data_type() { Ok(c) } else { arrow_cast::cast(&c, f.data_type()) })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new_with_options(spec.schema.clone(), columns, &RecordBatchOptions::new().with_row_count(Some(n)))
        .map(Some)
}

/// Nearer, or as near and earlier on the right side (a deterministic order for ties).
fn closer(a: &(f64, u32, u32), b: &(f64, u32, u32)) -> bool {
    (a.0, a.1, a.2) < (b.0, b.1, b.2)
}

/// Deterministic pseudo-random numbers in [0, 1) for the tests.
#[cfg(test)]
pub(crate) fn uniform(seed: u64) -> impl FnMut() -> f64 {
    let mut x = seed;
    move || {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The point at `distance` degrees from (ra, dec) towards `bearing` (radians from north).
    fn destination(ra: f64, dec: f64, distance: f64, bearing: f64) -> (f64, f64) {
        let (d, delta, theta) = (distance.to_radians(), dec.to_radians(), bearing);
        let lat = (delta.sin() * d.cos() + delta.cos() * d.sin() * theta.cos()).asin();
        let lon = ra.to_radians() + (theta.sin() * d.sin() * delta.cos()).atan2(d.cos() - delta.sin() * lat.sin());
        (lon.to_degrees().rem_euclid(360.0), lat.to_degrees())
    }

    /// Whenever the quick test says a circle is inside its pixel, 256 points on the circle
    /// (exact spherical offsets) are all in that pixel; and it says so for most circles.
    #[test]
    fn the_quick_inside_test_never_claims_a_circle_that_crosses_an_edge() {
        let mut next = uniform(11);
        let (mut claimed, mut tried) = (0, 0);
        for _ in 0..20_000 {
            let order = 3 + (next() * 8.0) as u8;
            let radius = (0.5 + next() * 60.0) / 3600.0;
            let (ra, dec) = (next() * 360.0, (2.0 * next() - 1.0).asin().to_degrees());
            let layer = cdshealpix::nested::get(order);
            let own = layer.hash(ra.to_radians(), dec.to_radians());
            tried += 1;
            if !inside_own_pixel(layer, own, ra, dec, radius) {
                continue;
            }
            claimed += 1;
            for i in 0..256 {
                let (a, d) = destination(ra, dec, radius, i as f64 * std::f64::consts::TAU / 256.0);
                assert_eq!(
                    layer.hash(a.to_radians(), d.to_radians()),
                    own,
                    "order {order}, r = {}\", ({ra}, {dec}): the circle leaves its pixel",
                    radius * 3600.0
                );
            }
        }
        assert!(claimed > tried * 3 / 4, "the quick test decides most circles ({claimed} of {tried})");
    }
}
