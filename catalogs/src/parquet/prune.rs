//! Row-group pruning from min/max statistics against conjunctive column bounds.

use parquet::file::metadata::RowGroupMetaData;
use parquet::file::statistics::Statistics;
use serde::{Deserialize, Serialize};

/// A closed or open numeric range one column must fall in for a row to qualify.
///
/// Bounds come from the conjuncts of a `WHERE` clause (`mag_i < 26`, `BETWEEN`, `IN`, the
/// bounding box of a cone); a row group whose `[min, max]` misses the range holds no row that
/// could qualify. NaN never satisfies a range, and Parquet statistics exclude NaN.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnBound {
    /// Column name in the catalog schema.
    pub column: String,
    /// Lower bound and whether it is inclusive.
    pub lower: Option<(f64, bool)>,
    /// Upper bound and whether it is inclusive.
    pub upper: Option<(f64, bool)>,
}

impl ColumnBound {
    /// True when a value range `[min, max]` may hold a value inside this bound.
    pub fn may_overlap(&self, min: f64, max: f64) -> bool {
        if let Some((lo, inclusive)) = self.lower {
            if max < lo || (!inclusive && max == lo) {
                return false;
            }
        }
        if let Some((hi, inclusive)) = self.upper {
            if min > hi || (!inclusive && min == hi) {
                return false;
            }
        }
        true
    }

    /// True when the bound admits no value at all (e.g. `x > 5 AND x < 3`).
    pub fn is_empty(&self) -> bool {
        match (self.lower, self.upper) {
            (Some((lo, li)), Some((hi, hi_inc))) => lo > hi || (lo == hi && !(li && hi_inc)),
            _ => false,
        }
    }
}

/// Min and max of a column chunk as `f64`, when the statistics have both.
pub fn chunk_range(stats: &Statistics) -> Option<(f64, f64)> {
    match stats {
        Statistics::Int32(s) => Some((*s.min_opt()? as f64, *s.max_opt()? as f64)),
        Statistics::Int64(s) => Some((*s.min_opt()? as f64, *s.max_opt()? as f64)),
        Statistics::Float(s) => Some((*s.min_opt()? as f64, *s.max_opt()? as f64)),
        Statistics::Double(s) => Some((*s.min_opt()?, *s.max_opt()?)),
        _ => None,
    }
}

/// True when the row group may hold a qualifying row. `leaf_of` maps a column name to
/// the file's leaf column index (None: the column is absent from this file, read as nulls).
pub fn row_group_may_match(
    row_group: &RowGroupMetaData,
    bounds: &[ColumnBound],
    leaf_of: impl Fn(&str) -> Option<usize>,
) -> bool {
    bounds.iter().all(|bound| {
        if bound.is_empty() {
            return false;
        }
        let Some(leaf) = leaf_of(&bound.column) else {
            // All nulls in this file: no value can satisfy a range.
            return false;
        };
        let chunk = row_group.column(leaf);
        match chunk.statistics().and_then(chunk_range) {
            Some((min, max)) => bound.may_overlap(min, max),
            None => {
                // No usable statistics. If the chunk is entirely null, nothing qualifies.
                let nulls = chunk.statistics().and_then(|s| s.null_count_opt());
                !matches!(nulls, Some(n) if n as i64 == row_group.num_rows())
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound(lower: Option<(f64, bool)>, upper: Option<(f64, bool)>) -> ColumnBound {
        ColumnBound { column: "x".into(), lower, upper }
    }

    #[test]
    fn bounds_overlap_respects_inclusivity() {
        let lt = bound(None, Some((26.0, false)));
        assert!(lt.may_overlap(20.0, 27.0));
        assert!(!lt.may_overlap(26.0, 30.0));
        let le = bound(None, Some((26.0, true)));
        assert!(le.may_overlap(26.0, 30.0));
        let between = bound(Some((1.0, true)), Some((2.0, true)));
        assert!(!between.may_overlap(2.5, 3.0));
        assert!(!between.may_overlap(-1.0, 0.5));
        assert!(between.may_overlap(0.0, 10.0));
    }

    #[test]
    fn contradictory_bound_is_empty() {
        assert!(bound(Some((5.0, false)), Some((3.0, false))).is_empty());
        assert!(bound(Some((3.0, false)), Some((3.0, true))).is_empty());
        assert!(!bound(Some((3.0, true)), Some((3.0, true))).is_empty());
    }
}
