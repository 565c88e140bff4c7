//! Golden query scripts: `tests/scripts/<name>.query` holds statements separated by blank
//! lines (`#` starts a comment line); the rendered results must equal
//! `tests/scripts/<name>.expected`. `UPDATE_EXPECT=1` rewrites the expected files.
//!
//! `EXPLAIN` statements render the plan text; queries render one line per row, floats with
//! six decimals (aggregates may differ in the last bits between runs), rows sorted unless
//! the statement has `ORDER BY` or a limit.

use std::fmt::Write;
use std::path::PathBuf;

use crate::engine::{explain, query};
use crate::value::{Value, sorted};

/// Folder of the scripts.
pub fn scripts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts")
}

/// The statements of a script.
pub fn statements(script: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in script.lines().chain(std::iter::once("")) {
        let line = line.trim_end();
        if line.trim_start().starts_with('#') {
            continue;
        }
        if line.trim().is_empty() {
            if !current.trim().is_empty() {
                out.push(current.trim().to_string());
            }
            current.clear();
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    out
}

fn cell(v: &Value) -> String {
    match v {
        Value::Float(x) if x.is_finite() => format!("{x:.6}"),
        other => other.to_string(),
    }
}

/// Renders one statement's result.
pub fn render(sql: &str, workers: usize) -> String {
    let upper = sql.to_ascii_uppercase();
    if upper.trim_start().starts_with("EXPLAIN") {
        return explain(sql, workers);
    }
    let result = query(sql, workers);
    let ordered = upper.contains("ORDER BY") || upper.contains("LIMIT") || upper.contains("TOP ");
    let rows = if ordered { result.rows() } else { sorted(result.rows()) };
    let mut text = result.names().join(" | ");
    text.push('\n');
    for row in rows {
        let cells: Vec<String> = row.iter().map(cell).collect();
        let _ = writeln!(text, "{}", cells.join(" | "));
    }
    text
}

/// Runs script `name` on `workers` threads and compares (or, with `UPDATE_EXPECT=1`,
/// rewrites) its expected output.
#[track_caller]
pub fn check_script(name: &str, workers: usize) {
    let dir = scripts_dir();
    let script_path = dir.join(format!("{name}.query"));
    let expected_path = dir.join(format!("{name}.expected"));
    let script = std::fs::read_to_string(&script_path).unwrap_or_else(|e| panic!("{}: {e}", script_path.display()));
    let mut actual = String::new();
    for sql in statements(&script) {
        let _ = writeln!(actual, "> {}", sql.replace('\n', "\n> "));
        actual.push_str(&render(&sql, workers));
        actual.push('\n');
    }
    if std::env::var_os("UPDATE_EXPECT").is_some_and(|v| v == "1") {
        std::fs::write(&expected_path, &actual).unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
        return;
    }
    let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
    if expected != actual {
        let first = expected
            .lines()
            .zip(actual.lines())
            .position(|(e, a)| e != a)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "golden script {name} differs from {} at line {} (rerun with UPDATE_EXPECT=1 to accept):\n  expected: {:?}\n  actual:   {:?}\n--- full actual output ---\n{actual}",
            expected_path.display(),
            first + 1,
            expected.lines().nth(first).unwrap_or("<end of file>"),
            actual.lines().nth(first).unwrap_or("<end of output>"),
        );
    }
}
