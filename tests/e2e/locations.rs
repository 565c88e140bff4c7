//! Catalog locations through the binary: a folder, a glob, a single file, several
//! catalogs at once, and hidden files (`_*`, `.*`) that a folder scan skips.

use starflow_e2e::{Scratch, dp02, starflow};

fn count(location: &str) -> String {
    let out = starflow(&["query", "--catalog", &format!("t={location}"), "SELECT COUNT(*) AS n FROM t"]);
    out.ok().lines().last().expect("a count").to_string()
}

#[test]
fn folder_glob_and_single_file_agree_with_the_files() {
    let fx = dp02();
    let dir = fx.dir.to_str().expect("utf-8");
    assert_eq!(count(dir), fx.rows.len().to_string());
    assert_eq!(count(&format!("{dir}/*.parquet")), fx.rows.len().to_string());
    let tract_2001 = fx.rows.iter().filter(|r| r.tract == 2001).count();
    assert_eq!(count(&format!("{dir}/tract_2001.parquet")), tract_2001.to_string());
    let first_two = fx.rows.iter().filter(|r| r.tract <= 2001).count();
    assert_eq!(count(&format!("{dir}/tract_200[01].parquet")), first_two.to_string());
}

#[test]
fn folder_scan_skips_hidden_files_and_recurses() {
    let fx = dp02();
    let scratch = Scratch::new("hidden");
    let nested = scratch.join("nested");
    std::fs::create_dir_all(&nested).expect("nested folder");
    std::fs::copy(&fx.files[0], nested.join("a.parquet")).expect("copy");
    std::fs::copy(&fx.files[1], scratch.join("_metadata.parquet")).expect("copy");
    std::fs::copy(&fx.files[2], scratch.join(".hidden.parquet")).expect("copy");
    std::fs::write(scratch.join("notes.txt"), "not a catalog file").expect("write");
    let first = fx.rows.iter().filter(|r| r.file == 0).count();
    assert_eq!(count(scratch.path().to_str().expect("utf-8")), first.to_string());
}

#[test]
fn several_catalogs_in_one_invocation() {
    let fx = dp02();
    let dir = fx.dir.display();
    let out = starflow(&[
        "query".to_string(),
        "--catalog".into(),
        format!("a={dir}/tract_2000.parquet"),
        "--catalog".into(),
        format!("b={dir}/tract_2005.parquet"),
        "SELECT MAX(tract) AS t FROM b".into(),
    ]);
    assert_eq!(out.ok(), "t\n2005\n");
}
