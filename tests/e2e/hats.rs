//! HATS catalogs against hats-import and LSDB (run from Python, `tests/scripts/hats_reference.py`)
//! and brute force, on a generated sky with dense clusters across RA = 0/360, at both poles, on
//! the equatorial belt's edge, and a thin all-sky background:
//!
//! - `starflow hats import` cuts the catalog into exactly hats-import's partitions, puts the
//!   same rows in each, sorted by a correct `_healpix_29`, and writes the same files on 1 and 2
//!   workers, on 2 processes and spooling every row to disk; LSDB opens the result (with its
//!   margin);
//! - its margin catalog holds every row within the margin of each partition;
//! - cone, box and polygon searches through starflow, on hats-import's catalog and on
//!   starflow's, find what LSDB finds and what brute force finds, opening fewer partitions.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Float32Array, Float64Array, Int64Array, RecordBatch};
use starflow_e2e::{Scratch, haversine_deg, healpix_nested, starflow, write_parquet};

const CLUSTERS: [(f64, f64, f64); 6] = [
    (0.0, 10.0, 0.1),      // across RA = 0/360
    (123.0, 89.95, 0.05),  // the north pole inside
    (300.0, -89.95, 0.05), // the south pole inside
    (45.0, 41.81, 0.1),    // the equatorial belt's edge
    (200.0, -20.0, 0.1),   // a polygon's
    (90.0, 0.0, 0.1),      // the equator
];
const ROWS_PER_CLUSTER: usize = 1_200;
const BACKGROUND: usize = 20_000;
const HIGHEST_ORDER: u8 = 8;
const THRESHOLD: u64 = 1_500;
const MARGIN_ARCSEC: f64 = 60.0;

struct Sky {
    scratch: Scratch,
    /// (id, ra, dec).
    rows: Vec<(i64, f64, f64)>,
}

fn sky() -> &'static Sky {
    static SKY: OnceLock<Sky> = OnceLock::new();
    SKY.get_or_init(|| {
        let scratch = Scratch::new("hats");
        let src = scratch.join("src");
        std::fs::create_dir_all(&src).unwrap();
        let mut next = starflow_e2e::uniform(7);
        let mut rows = Vec::new();
        for &(ra0, dec0, w) in &CLUSTERS {
            for _ in 0..ROWS_PER_CLUSTER {
                let dec: f64 = (dec0 + (next() - 0.5) * 2.0 * w).clamp(-90.0, 90.0);
                let ra = (ra0 + (next() - 0.5) * 2.0 * w / dec0.to_radians().cos().max(0.02)).rem_euclid(360.0);
                rows.push((rows.len() as i64, ra, dec));
            }
        }
        for _ in 0..BACKGROUND {
            let ra = next() * 360.0;
            let dec = (2.0 * next() - 1.0).asin().to_degrees();
            rows.push((rows.len() as i64, ra, dec));
        }
        for (k, chunk) in rows.chunks(rows.len().div_ceil(3)).enumerate() {
            let batch = RecordBatch::try_from_iter([
                ("id", Arc::new(Int64Array::from_iter_values(chunk.iter().map(|r| r.0))) as _),
                ("ra", Arc::new(Float64Array::from_iter_values(chunk.iter().map(|r| r.1))) as _),
                ("dec", Arc::new(Float64Array::from_iter_values(chunk.iter().map(|r| r.2))) as _),
                ("mag", Arc::new(Float32Array::from_iter_values(chunk.iter().map(|r| 20.0 + (r.0 % 7) as f32))) as _),
            ])
            .unwrap();
            write_parquet(&src.join(format!("part{k}.parquet")), &batch);
        }
        Sky { scratch, rows }
    })
}

/// A search: starflow's predicate, LSDB's arguments, brute force.
struct Region {
    sql: String,
    lsdb: serde_json::Value,
    inside: Box<dyn Fn(f64, f64) -> bool + Sync + Send>,
}

fn regions() -> Vec<Region> {
    let cone = |ra: f64, dec: f64, arcsec: f64| Region {
        sql: format!("CONTAINS(POINT(ra, dec), CIRCLE({ra:?}, {dec:?}, {:?})) = 1", arcsec / 3600.0),
        lsdb: serde_json::json!({"kind": "cone", "ra": ra, "dec": dec, "radius_arcsec": arcsec}),
        inside: Box::new(move |a, d| haversine_deg(a, d, ra, dec) <= arcsec / 3600.0),
    };
    // A box across RA = 0: RA 359.95..0.04, Dec 9.93..10.06.
    let boxed = Region {
        sql: "CONTAINS(POINT(ra, dec), BOX(359.995, 9.995, 0.09, 0.13)) = 1".into(),
        lsdb: serde_json::json!({"kind": "box", "ra": [359.95, 0.04], "dec": [9.93, 10.06]}),
        inside: Box::new(|a, d| (a >= 359.95 || a <= 0.04) && (9.93..=10.06).contains(&d)),
    };
    let vertices = [(199.96, -20.06), (200.07, -20.05), (200.05, -19.93), (199.95, -19.97)];
    let polygon = Region {
        sql: format!(
            "CONTAINS(POINT(ra, dec), POLYGON({})) = 1",
            vertices.iter().map(|(a, d)| format!("{a:?}, {d:?}")).collect::<Vec<_>>().join(", ")
        ),
        lsdb: serde_json::json!({"kind": "polygon", "vertices": vertices.iter().map(|v| [v.0, v.1]).collect::<Vec<_>>()}),
        inside: Box::new(move |a, d| convex_contains(&vertices, a, d)),
    };
    vec![cone(0.0, 10.0, 180.0), cone(123.0, 89.97, 200.0), cone(300.0, -89.95, 150.0), boxed, polygon]
}

fn unit(ra: f64, dec: f64) -> [f64; 3] {
    let (a, d) = (ra.to_radians(), dec.to_radians());
    [d.cos() * a.cos(), d.cos() * a.sin(), d.sin()]
}

/// Inside a convex spherical polygon: on one side of every edge's great circle.
fn convex_contains(vertices: &[(f64, f64)], ra: f64, dec: f64) -> bool {
    let p = unit(ra, dec);
    let signs: Vec<f64> = (0..vertices.len())
        .map(|i| {
            let (a, b) = (
                unit(vertices[i].0, vertices[i].1),
                unit(vertices[(i + 1) % vertices.len()].0, vertices[(i + 1) % vertices.len()].1),
            );
            let n = [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
            n[0] * p[0] + n[1] * p[1] + n[2] * p[2]
        })
        .collect();
    signs.iter().all(|&s| s >= 0.0) || signs.iter().all(|&s| s <= 0.0)
}

/// (order, pixel) → ids of every partition file under `root/dataset`, each file checked:
/// `_healpix_29` first, inside the file's pixel, sorted; `healpix` gets each id's value.
fn partitions_of(root: &Path, check_healpix: bool, healpix: &mut BTreeMap<i64, i64>) -> BTreeMap<(u8, u64), Vec<i64>> {
    let mut out = BTreeMap::new();
    for file in files_under(&root.join("dataset")) {
        let name = file.to_string_lossy().to_string();
        let number = |key: &str| -> u64 {
            let at = name.rfind(key).unwrap() + key.len();
            name[at..].chars().take_while(char::is_ascii_digit).collect::<String>().parse().unwrap()
        };
        let (order, pixel) = (number("Norder=") as u8, number("Npix="));
        let reader =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&file).unwrap())
                .unwrap()
                .build()
                .unwrap();
        let mut ids = Vec::new();
        let mut last = 0i64;
        for batch in reader {
            let batch = batch.unwrap();
            let schema = batch.schema();
            assert_eq!(schema.field(0).name(), "_healpix_29", "{name}");
            let h = batch.column(0).as_primitive::<Int64Type>();
            let id = batch.column(schema.index_of("id").unwrap()).as_primitive::<Int64Type>();
            let ra = batch.column(schema.index_of("ra").unwrap()).as_primitive::<arrow_array::types::Float64Type>();
            let dec = batch.column(schema.index_of("dec").unwrap()).as_primitive::<arrow_array::types::Float64Type>();
            for i in 0..batch.num_rows() {
                if check_healpix {
                    // Order 29 is beyond a from-scratch formula's rounding: the order-10 pixel
                    // of the brute-force reference, and hats-import's value (below), check it.
                    let want = healpix_nested(10, ra.value(i), dec.value(i)) as i64;
                    assert_eq!(h.value(i) >> 38, want, "{name}: _healpix_29 of id {}", id.value(i));
                    assert_eq!(
                        (h.value(i) as u64) >> (2 * (29 - u32::from(order))),
                        pixel,
                        "{name}: id {} not in the file's pixel",
                        id.value(i)
                    );
                    assert!(h.value(i) >= last, "{name}: not sorted by _healpix_29");
                    last = h.value(i);
                }
                ids.push(id.value(i));
                healpix.insert(id.value(i), h.value(i));
            }
        }
        ids.sort_unstable();
        out.insert((order, pixel), ids);
    }
    out
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else if path.file_name().unwrap().to_string_lossy().starts_with("Npix=") {
            out.push(path);
        }
    }
    out.sort();
    out
}

fn import(out: &Path, run_on: &[&str]) {
    let src = sky().scratch.join("src");
    let mut args: Vec<String> = [
        "hats",
        "import",
        "--catalog",
        &format!("sky={}", src.display()),
        "--out",
        &out.to_string_lossy(),
        "--highest-order",
        &HIGHEST_ORDER.to_string(),
        "--threshold",
        &THRESHOLD.to_string(),
        "--margin-arcsec",
        &MARGIN_ARCSEC.to_string(),
        "--row-group-rows",
        "500",
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    args.extend(run_on.iter().map(ToString::to_string));
    starflow(&args).ok();
}

/// Runs the Python reference (hats-import and LSDB) once.
fn reference(ours: &Path) -> &'static serde_json::Value {
    static REF: OnceLock<serde_json::Value> = OnceLock::new();
    REF.get_or_init(|| {
        let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/hats-venv/bin/python");
        let python = std::env::var("STARFLOW_HATS_PYTHON")
            .ok()
            .or_else(|| venv.exists().then(|| venv.to_string_lossy().to_string()))
            .unwrap_or_else(|| "python3".into());
        let regions: Vec<serde_json::Value> = regions().into_iter().map(|r| r.lsdb).collect();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/hats_reference.py");
        let out = std::process::Command::new(&python)
            .arg(script)
            .arg(sky().scratch.join("src"))
            .arg(sky().scratch.join("theirs"))
            .arg(ours)
            .arg(HIGHEST_ORDER.to_string())
            .arg(THRESHOLD.to_string())
            .arg(serde_json::to_string(&regions).unwrap())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {python} (run tests/scripts/hats-env.sh, or set STARFLOW_HATS_PYTHON to a Python with hats-import, lsdb and lsst-sphgeom): {e}"));
        assert!(
            out.status.success(),
            "the hats-import/LSDB reference failed ({python}; tests/scripts/hats-env.sh installs hats-import, lsdb, lsst-sphgeom):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("reference JSON")
    })
}

fn ids(v: &serde_json::Value) -> Vec<i64> {
    v.as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect()
}

#[test]
fn import_cuts_like_hats_import_and_searches_agree_with_lsdb() {
    let sky = sky();
    let ours = sky.scratch.join("ours");
    import(&ours, &["-w", "2"]);
    let reference = reference(&ours);

    // The same partitions, with the same rows.
    let theirs: BTreeMap<(u8, u64), Vec<i64>> = reference["partitions"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let (o, p) = k.split_once('/').unwrap();
            ((o.parse().unwrap(), p.parse().unwrap()), ids(v))
        })
        .collect();
    let mut healpix = BTreeMap::new();
    let mine = partitions_of(&ours.join("sky"), true, &mut healpix);
    let theirs_healpix: BTreeMap<i64, i64> = reference["healpix_29"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.parse().unwrap(), v.as_i64().unwrap()))
        .collect();
    assert_eq!(healpix, theirs_healpix, "_healpix_29 differs from hats-import's");
    assert!(theirs.len() > 20, "{} partitions", theirs.len());
    assert_eq!(
        mine.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>(),
        "partitions differ from hats-import's"
    );
    for (k, v) in &theirs {
        assert_eq!(&mine[k], v, "rows of partition {k:?}");
    }
    assert_eq!(reference["ours_rows"].as_u64(), Some(sky.rows.len() as u64), "LSDB reads every row of ours");
    assert_eq!(reference["ours_margin"].as_bool(), Some(true), "LSDB finds our margin catalog");

    // Searches: LSDB on both catalogs, starflow on both, brute force.
    let theirs_dir = sky.scratch.join("theirs/sky");
    for (i, region) in regions().iter().enumerate() {
        let brute: Vec<i64> = sky.rows.iter().filter(|r| (region.inside)(r.1, r.2)).map(|r| r.0).collect();
        assert!(brute.len() > 20, "region {i} holds {} rows", brute.len());
        assert_eq!(ids(&reference["theirs"][i]), brute, "LSDB on hats-import's catalog, region {i}: {}", region.sql);
        assert_eq!(ids(&reference["ours"][i]), brute, "LSDB on starflow's catalog, region {i}");
        for dir in [&ours, &theirs_dir] {
            let catalog = format!("h={}", dir.display());
            let sql = format!("SELECT id FROM h WHERE {} ORDER BY id", region.sql);
            let out = starflow(&["query", "--catalog", &catalog, "--format", "csv", &sql]);
            let got: Vec<i64> = out.ok().lines().skip(1).map(|l| l.parse().unwrap()).collect();
            assert_eq!(got, brute, "starflow on {}: {sql}", dir.display());
            let explain = starflow(&["query", "--catalog", &catalog, &format!("EXPLAIN {sql}")]);
            let line = explain.ok().lines().find(|l| l.contains("HEALPix partitions:")).unwrap_or_default().to_string();
            let kept: Vec<usize> = line.split_whitespace().filter_map(|w| w.parse().ok()).take(2).collect();
            assert!(
                kept.len() == 2 && kept[0] >= 1 && kept[0] * 4 < kept[1],
                "region {i} should open few partitions: {line}"
            );
        }
    }
}

#[test]
fn import_writes_the_same_files_on_workers_processes_and_spooling() {
    let (one, two, processes) = (sky().scratch.join("w1"), sky().scratch.join("w2"), sky().scratch.join("p2"));
    import(&one, &["-w", "1"]);
    import(&two, &["-w", "2"]);
    import(&processes, &["-w", "1", "--processes", "2"]);
    // No memory budget: every row is spooled to disk and read back.
    let spooled = sky().scratch.join("spooled");
    import(&spooled, &["-w", "2", "--memory-mib", "0"]);
    let files = |root: &Path| -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        for sub in ["sky", "sky_60arcs"] {
            for f in files_under(&root.join(sub).join("dataset")) {
                out.push((f.strip_prefix(root).unwrap().to_path_buf(), std::fs::read(&f).unwrap()));
            }
        }
        out
    };
    let a = files(&one);
    assert!(a.len() > 40);
    for (other, what) in [(&two, "2 workers"), (&processes, "2 processes"), (&spooled, "spooling everything")] {
        let b = files(other);
        assert_eq!(a.iter().map(|f| &f.0).collect::<Vec<_>>(), b.iter().map(|f| &f.0).collect::<Vec<_>>(), "{what}");
        for (x, y) in a.iter().zip(&b) {
            assert!(x.1 == y.1, "{} differs between 1 worker and {what}", x.0.display());
        }
        for f in
            ["sky/partition_info.csv", "sky_60arcs/partition_info.csv", "collection.properties", "sky/hats.properties"]
        {
            let strip = |t: Vec<u8>| {
                String::from_utf8(t)
                    .unwrap()
                    .lines()
                    .filter(|l| !l.starts_with("hats_creation"))
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            assert_eq!(
                strip(std::fs::read(one.join(f)).unwrap()),
                strip(std::fs::read(other.join(f)).unwrap()),
                "{f} ({what})"
            );
        }
    }
}

#[test]
fn margins_hold_every_row_within_reach_of_a_partition() {
    let sky = sky();
    let dir = sky.scratch.join("margins");
    import(&dir, &["-w", "2"]);
    let primary = partitions_of(&dir.join("sky"), false, &mut BTreeMap::new());
    let margin = partitions_of(&dir.join("sky_60arcs"), false, &mut BTreeMap::new());
    let home: BTreeMap<i64, (u8, u64)> =
        primary.iter().flat_map(|(k, ids)| ids.iter().map(move |i| (*i, *k))).collect();
    assert_eq!(home.len(), sky.rows.len());
    let margin_sets: BTreeMap<(u8, u64), BTreeSet<i64>> =
        margin.iter().map(|(k, v)| (*k, v.iter().copied().collect())).collect();
    for (k, ids) in &margin_sets {
        assert!(primary.contains_key(k), "margin partition {k:?} has no primary partition");
        assert!(ids.iter().all(|i| home[i] != *k), "a row of {k:?} is in its own margin");
    }
    // Every pair closer than the margin across two partitions: each row is in the other's margin.
    let r = MARGIN_ARCSEC / 3600.0;
    let mut by_dec: Vec<&(i64, f64, f64)> = sky.rows.iter().collect();
    by_dec.sort_by(|a, b| a.2.total_cmp(&b.2));
    let mut pairs = 0;
    for i in 0..by_dec.len() {
        for j in i + 1..by_dec.len() {
            let (a, b) = (by_dec[i], by_dec[j]);
            if b.2 - a.2 > r {
                break;
            }
            if haversine_deg(a.1, a.2, b.1, b.2) > r || home[&a.0] == home[&b.0] {
                continue;
            }
            pairs += 1;
            for (x, y) in [(a, b), (b, a)] {
                let m = margin_sets.get(&home[&x.0]);
                assert!(
                    m.is_some_and(|m| m.contains(&y.0)),
                    "id {} (within {MARGIN_ARCSEC}\" of id {}) is missing from the margin of {:?}",
                    y.0,
                    x.0,
                    home[&x.0]
                );
            }
        }
    }
    assert!(pairs > 100, "only {pairs} pairs across partitions");
}

#[test]
fn bad_imports_fail_cleanly_and_leave_nothing() {
    let sky = sky();
    let src = sky.scratch.join("src");
    // Its own parent folder: the other tests' imports stage beside their outputs.
    let parent = sky.scratch.join("bad-parent");
    std::fs::create_dir_all(&parent).unwrap();
    let out = parent.join("bad");
    // A pixel over the threshold at the highest order.
    starflow(&[
        "hats",
        "import",
        "--catalog",
        &format!("sky={}", src.display()),
        "--out",
        &out.to_string_lossy(),
        "--highest-order",
        "2",
        "--threshold",
        "10",
    ])
    .clean_error(&["over the threshold", "--highest-order"]);
    assert!(!out.exists());
    let leftovers: Vec<_> = std::fs::read_dir(&parent)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("importing"))
        .collect();
    assert!(leftovers.is_empty(), "a failed import left {leftovers:?}");
    // An existing folder is never overwritten.
    starflow(&["hats", "import", "--catalog", &format!("sky={}", src.display()), "--out", &src.to_string_lossy()])
        .clean_error(&["already exists"]);
    // A HATS folder with a broken partition list names the file.
    let broken = sky.scratch.join("broken");
    std::fs::create_dir_all(broken.join("dataset")).unwrap();
    std::fs::write(broken.join("hats.properties"), "obs_collection=x\nhats_col_ra=ra\nhats_col_dec=dec\n").unwrap();
    std::fs::write(broken.join("partition_info.csv"), "Norder,Npix\n1,99\n").unwrap();
    starflow(&["query", "--catalog", &format!("x={}", broken.display()), "SELECT COUNT(*) FROM x"]).clean_error(&[
        "partition_info.csv",
        "line 2",
        "Npix",
    ]);
}

/// Copies a folder tree.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_tree(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

#[test]
fn every_hats_layout_reads_alike() {
    let sky = sky();
    let ours = sky.scratch.join("layouts-ours");
    import(&ours, &["-w", "2"]);
    reference(&ours);
    let theirs = sky.scratch.join("theirs/sky");
    // hats-import's catalog read from `_metadata` alone, then from the folder names alone.
    let from_metadata = sky.scratch.join("layout-metadata");
    copy_tree(&theirs, &from_metadata);
    std::fs::remove_file(from_metadata.join("partition_info.csv")).unwrap();
    assert!(from_metadata.join("dataset/_metadata").exists(), "hats-import writes _metadata");
    let from_names = sky.scratch.join("layout-names");
    copy_tree(&from_metadata, &from_names);
    std::fs::remove_file(from_names.join("dataset/_metadata")).unwrap();
    // starflow's catalog with each partition a folder of two files (hats_npix_suffix = /).
    let folders = sky.scratch.join("layout-folders");
    copy_tree(&ours.join("sky"), &folders);
    for file in files_under(&folders.join("dataset")) {
        let dir = file.with_extension("");
        std::fs::create_dir_all(&dir).unwrap();
        let reader =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&file).unwrap())
                .unwrap()
                .build()
                .unwrap();
        // Rows split in two files, in order.
        let mut rows: Vec<RecordBatch> = Vec::new();
        for b in reader.map(Result::unwrap) {
            rows.extend((0..b.num_rows()).map(|i| b.slice(i, 1)));
        }
        let half = rows.len() / 2;
        for (k, part) in [&rows[..half], &rows[half..]].into_iter().enumerate() {
            let f = std::fs::File::create(dir.join(format!("part{k}.parquet"))).unwrap();
            let mut w = parquet::arrow::ArrowWriter::try_new(f, rows[0].schema(), None).unwrap();
            part.iter().for_each(|b| w.write(b).unwrap());
            w.close().unwrap();
        }
        std::fs::remove_file(&file).unwrap();
    }
    let props = std::fs::read_to_string(folders.join("hats.properties")).unwrap();
    std::fs::write(folders.join("hats.properties"), props.replace("hats_npix_suffix=.parquet", "hats_npix_suffix=/"))
        .unwrap();

    let region = &regions()[0];
    let want: Vec<i64> = sky.rows.iter().filter(|r| (region.inside)(r.1, r.2)).map(|r| r.0).collect();
    let total: i64 = sky.rows.iter().map(|r| r.0).sum();
    for dir in [&from_metadata, &from_names, &folders, &ours.join("sky_60arcs")] {
        let catalog = format!("h={}", dir.display());
        let margin = dir.ends_with("sky_60arcs");
        let out =
            starflow(&["query", "--catalog", &catalog, "--format", "csv", "SELECT COUNT(*) AS n, SUM(id) AS s FROM h"]);
        let line = out.ok().lines().nth(1).unwrap_or_default().to_string();
        if margin {
            let n: u64 = line.split(',').next().unwrap().parse().unwrap();
            assert!(n > 0, "the margin catalog reads as a catalog: {line}");
            continue;
        }
        assert_eq!(line, format!("{},{total}", sky.rows.len()), "{}", dir.display());
        let sql = format!("SELECT id FROM h WHERE {} ORDER BY id", region.sql);
        let got: Vec<i64> = starflow(&["query", "--catalog", &catalog, "--format", "csv", &sql])
            .ok()
            .lines()
            .skip(1)
            .map(|l| l.parse().unwrap())
            .collect();
        assert_eq!(got, want, "cone on {}", dir.display());
    }
}

#[test]
fn a_partition_that_disagrees_with_the_schema_is_named() {
    let dir = sky().scratch.join("disagrees");
    import(&dir, &["-w", "2"]);
    let file = files_under(&dir.join("sky/dataset")).into_iter().next().unwrap();
    let reader =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&file).unwrap())
            .unwrap()
            .build()
            .unwrap();
    let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
    // `mag` as Float64 in this one file (Float32 in `_common_metadata`).
    let widened: Vec<RecordBatch> = batches
        .iter()
        .map(|b| {
            let schema = b.schema();
            let columns = schema
                .fields()
                .iter()
                .zip(b.columns())
                .map(|(f, c)| {
                    let name = f.name().as_str();
                    let c: arrow_array::ArrayRef = if name == "mag" {
                        let v = c.as_primitive::<arrow_array::types::Float32Type>();
                        Arc::new(Float64Array::from_iter_values(v.values().iter().map(|x| f64::from(*x))))
                    } else {
                        c.clone()
                    };
                    (name, c)
                })
                .collect::<Vec<_>>();
            RecordBatch::try_from_iter(columns).unwrap()
        })
        .collect();
    let f = std::fs::File::create(&file).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(f, widened[0].schema(), None).unwrap();
    widened.iter().for_each(|b| w.write(b).unwrap());
    w.close().unwrap();
    let name = file.file_name().unwrap().to_string_lossy().to_string();
    starflow(&["query", "--catalog", &format!("h={}", dir.join("sky").display()), "SELECT AVG(mag) FROM h"])
        .clean_error(&["\"mag\"", "_common_metadata", "Float32", &name, "Float64"]);
}
