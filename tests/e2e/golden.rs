//! Golden scripts (`tests/scripts/*.query` → `*.expected`; `UPDATE_EXPECT=1` rewrites):
//! EXPLAIN snapshots of the planner and small deterministic results, so any change in plans
//! or answers over the seeded catalog shows up as a reviewable diff.

use starflow_e2e::golden::check_script;

#[test]
fn explain_snapshots() {
    check_script("explain", 4);
}

#[test]
fn query_snapshots() {
    check_script("queries", 2);
}
