//! Row-group pruning from min/max statistics against conjunctive column bounds.

use parquet::file::statistics::Statistics;
use serde::{Deserialize, Serialize};

use crate::parquet::RowGroupStats;

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
        if let Some((lo, inclusive)) = self.lower
            && (max < lo || (!inclusive && max == lo))
        {
            return false;
        }
        if let Some((hi, inclusive)) = self.upper
            && (min > hi || (!inclusive && min == hi))
        {
            return false;
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

/// What the statistics of one column chunk tell about its values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ColumnStats {
    /// No usable statistics (non-numeric column, or the writer wrote none).
    Unknown,
    /// Every value is null.
    AllNull,
    /// Non-null, non-NaN values lie in `[min, max]`.
    Range(f64, f64),
}

impl ColumnStats {
    /// Reads Parquet chunk statistics of a chunk of `rows` rows.
    pub fn of(stats: Option<&Statistics>, rows: u64) -> Self {
        let Some(stats) = stats else { return Self::Unknown };
        let range = match stats {
            Statistics::Int32(s) => s.min_opt().zip(s.max_opt()).map(|(a, b)| (*a as f64, *b as f64)),
            Statistics::Int64(s) => s.min_opt().zip(s.max_opt()).map(|(a, b)| (*a as f64, *b as f64)),
            Statistics::Float(s) => s.min_opt().zip(s.max_opt()).map(|(a, b)| (*a as f64, *b as f64)),
            Statistics::Double(s) => s.min_opt().zip(s.max_opt()).map(|(a, b)| (*a, *b)),
            _ => None,
        };
        match range {
            Some((min, max)) if !min.is_nan() && !max.is_nan() => Self::Range(min, max),
            _ if stats.null_count_opt() == Some(rows) && rows > 0 => Self::AllNull,
            _ => Self::Unknown,
        }
    }
}

/// True when the row group may hold a qualifying row. `column_of` maps a catalog column
/// name to the file's column index (None: the column is absent from this file, all nulls).
pub fn row_group_may_match(
    row_group: &RowGroupStats,
    bounds: &[ColumnBound],
    column_of: impl Fn(&str) -> Option<usize>,
) -> bool {
    bounds.iter().all(|bound| {
        if bound.is_empty() {
            return false;
        }
        let Some(column) = column_of(&bound.column) else { return false };
        match row_group.columns.get(column).copied().unwrap_or(ColumnStats::Unknown) {
            ColumnStats::Range(min, max) => bound.may_overlap(min, max),
            ColumnStats::AllNull => false,
            ColumnStats::Unknown => true,
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
