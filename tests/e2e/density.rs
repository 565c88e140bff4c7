//! `starflow plot density`: the counts (Parquet) against brute force over the catalog's rows,
//! per RA/Dec bin and per HEALPix pixel, with and without `--where`; a sky across RA = 0 stays
//! in one piece; the PNG shows the densest bin where RA-to-the-left and Dec-up put it.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Float64Array, Int64Array, RecordBatch};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use starflow_e2e::image::decode_png;
use starflow_e2e::{DP02, Scratch, dp02, healpix_nested, starflow, write_parquet};

/// The layout of the picture (launcher/src/plot/draw.rs): margins, and screen pixels per bin.
const LEFT: usize = 110;
const TOP: usize = 60;

fn read(path: &Path) -> Vec<RecordBatch> {
    let file = std::fs::File::open(path).expect("the counts file");
    ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap().map(Result::unwrap).collect()
}

fn column_f64(batches: &[RecordBatch], name: &str) -> Vec<f64> {
    batches
        .iter()
        .flat_map(|b| b.column_by_name(name).unwrap().as_primitive::<Float64Type>().values().to_vec())
        .collect()
}

fn column_i64(batches: &[RecordBatch], name: &str) -> Vec<i64> {
    batches.iter().flat_map(|b| b.column_by_name(name).unwrap().as_primitive::<Int64Type>().values().to_vec()).collect()
}

fn plot(args: &[&str], scratch: &Scratch) -> (Vec<RecordBatch>, std::path::PathBuf) {
    let (png, counts) = (scratch.join("sky.png"), scratch.join("counts.parquet"));
    let catalog = format!("{DP02}={}", dp02().dir.display());
    let mut all = vec!["plot", "density", "--catalog", &catalog, "--out", png.to_str().unwrap()];
    all.extend_from_slice(&["--counts", counts.to_str().unwrap()]);
    all.extend_from_slice(args);
    let out = starflow(&all);
    out.ok();
    assert!(out.stderr.contains("wrote"), "{}", out.stderr);
    (read(&counts), png)
}

#[test]
fn bin_counts_match_brute_force() {
    for (filter, keep) in [
        (None, (|_: &starflow_e2e::Dp02Row| true) as fn(&starflow_e2e::Dp02Row) -> bool),
        (Some("mag_i < 24"), |r| r.mag_i < 24.0),
    ] {
        let scratch = Scratch::new("density");
        let mut args = vec!["--bins", "40x30", "--workers", "2"];
        if let Some(f) = filter {
            args.extend_from_slice(&["--where", f]);
        }
        let (counts, png) = plot(&args, &scratch);
        let (ra_min, ra_max) = (column_f64(&counts, "ra_min"), column_f64(&counts, "ra_max"));
        let (dec_min, dec_max) = (column_f64(&counts, "dec_min"), column_f64(&counts, "dec_max"));
        let (ix, iy, n) = (column_i64(&counts, "ix"), column_i64(&counts, "iy"), column_i64(&counts, "count"));
        let rows: Vec<_> = dp02().rows.iter().filter(|r| keep(r)).collect();
        assert_eq!(n.iter().sum::<i64>() as usize, rows.len(), "every row in one bin ({filter:?})");
        // Each bin holds the rows inside its edges (rows within 1e-9° of an edge may go either way).
        let edge = 1e-9;
        for b in 0..n.len() {
            let inside = |r: &&&starflow_e2e::Dp02Row, slack: f64| {
                r.ra >= ra_min[b] - slack
                    && r.ra < ra_max[b] + slack
                    && r.dec >= dec_min[b] - slack
                    && r.dec <= dec_max[b] + slack
            };
            let (surely, maybe) =
                (rows.iter().filter(|r| inside(r, -edge)).count(), rows.iter().filter(|r| inside(r, edge)).count());
            assert!(
                (surely..=maybe).contains(&(n[b] as usize)),
                "bin ({}, {}): {} not in {surely}..={maybe}",
                ix[b],
                iy[b],
                n[b]
            );
        }
        // The densest bin is drawn in the map's top colour where RA grows to the left and Dec up.
        let densest = (0..n.len()).max_by_key(|&b| n[b]).unwrap();
        let (width, _, pixels) = decode_png(&png);
        let zoom = 512 / 40;
        let x = LEFT + (40 - 1 - ix[densest] as usize) * zoom + zoom / 2;
        let y = TOP + (30 - 1 - iy[densest] as usize) * zoom + zoom / 2;
        assert_eq!(pixels[y * width + x], [0xfd, 0xe7, 0x25], "the densest bin's colour");
        let background = pixels.iter().filter(|p| **p == [255, 255, 255]).count();
        assert!(background < pixels.len(), "a picture");
    }
}

#[test]
fn healpix_counts_match_brute_force() {
    let scratch = Scratch::new("density-hp");
    let (counts, _) = plot(&["--healpix-order", "6", "--log"], &scratch);
    let got: BTreeMap<i64, i64> = column_i64(&counts, "pixel").into_iter().zip(column_i64(&counts, "count")).collect();
    let mut want: BTreeMap<i64, i64> = BTreeMap::new();
    for r in &dp02().rows {
        *want.entry(healpix_nested(6, r.ra, r.dec) as i64).or_default() += 1;
    }
    assert_eq!(got, want);
}

#[test]
fn a_sky_across_ra_zero_stays_in_one_piece() {
    let scratch = Scratch::new("density-wrap");
    let dir = scratch.join("wrap");
    std::fs::create_dir_all(&dir).unwrap();
    let ra: Vec<f64> = (0..2000).map(|i| (359.95 + (i % 100) as f64 * 0.001).rem_euclid(360.0)).collect();
    let dec: Vec<f64> = (0..2000).map(|i| -5.0 + (i / 100) as f64 * 0.002).collect();
    let batch = RecordBatch::try_from_iter([
        ("id", Arc::new(Int64Array::from_iter_values(0..2000)) as _),
        ("ra", Arc::new(Float64Array::from(ra)) as _),
        ("dec", Arc::new(Float64Array::from(dec)) as _),
    ])
    .unwrap();
    write_parquet(&dir.join("w.parquet"), &batch);
    let counts = scratch.join("c.parquet");
    let png = scratch.join("w.png");
    let out = starflow(&[
        "plot",
        "density",
        "--catalog",
        &format!("w={}", dir.display()),
        "--bins",
        "100x20",
        "--out",
        png.to_str().unwrap(),
        "--counts",
        counts.to_str().unwrap(),
    ]);
    out.ok();
    let counts = read(&counts);
    let (lo, hi) = (column_f64(&counts, "ra_min"), column_f64(&counts, "ra_max"));
    // Bins a thousandth of a degree wide on both sides of RA = 0, not 3.6° ones across the sky.
    for (l, h) in lo.iter().zip(&hi) {
        assert!((h - l).rem_euclid(360.0) < 0.002, "a bin {l}..{h}");
    }
    assert!(lo.iter().any(|l| *l > 359.0) && lo.iter().any(|l| *l < 1.0));
    assert_eq!(column_i64(&counts, "count").iter().sum::<i64>(), 2000);
}

#[test]
fn bad_plots_are_refused_by_name() {
    let scratch = Scratch::new("density-bad");
    let png = scratch.join("x.png");
    let catalog = format!("{DP02}={}", dp02().dir.display());
    let nulls = format!("nulls={}", starflow_e2e::nulls_catalog().display());
    for (args, needle) in [
        (vec!["--catalog", &catalog, "--bins", "0x10"], "--bins"),
        (vec!["--catalog", &catalog, "--bins", "wide"], "--bins"),
        (vec!["--catalog", &catalog, "--where", "mag_q < 3"], "mag_q"),
        (vec!["--catalog", &catalog, "--where", "mag_i > 99"], "nothing to plot"),
        (vec!["--catalog", &nulls], "no RA/Dec columns"),
    ] {
        let mut all = vec!["plot", "density", "--out", png.to_str().unwrap()];
        all.extend(args);
        starflow(&all).clean_error(&[needle]);
    }
}
