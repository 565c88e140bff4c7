//! Plans are data: a tree of operators, one `*Spec` per operator, serialisable so that every
//! worker (and later every process) installs the same dataflow.

pub mod explain;
pub mod expr;
pub mod hats;

use arrow_schema::{DataType, Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};
use starflow_catalogs::{ColumnBound, Partition};

pub use expr::{BinaryOp, Expr, Func, Literal};
pub use hats::HatsWriteSpec;

/// A query plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Plan {
    /// Read a catalog.
    Scan(ScanSpec),
    /// Keep rows where a predicate is true (used for `HAVING`).
    Filter {
        /// Input.
        input: Box<Plan>,
        /// The predicate.
        predicate: Expr,
    },
    /// Compute output columns.
    Project {
        /// Input.
        input: Box<Plan>,
        /// Output columns.
        spec: ProjectSpec,
    },
    /// Group and aggregate (two-phase: partial per worker, exchange by key, final).
    Aggregate {
        /// Input.
        input: Box<Plan>,
        /// Keys and aggregates.
        spec: AggregateSpec,
    },
    /// Order rows (top-k when limited); the result gathers on worker 0.
    Sort {
        /// Input.
        input: Box<Plan>,
        /// Keys and limit.
        spec: SortSpec,
    },
    /// The first `n` rows in catalog order; the result gathers on worker 0.
    Limit {
        /// Input.
        input: Box<Plan>,
        /// Rows to keep.
        n: u64,
    },
    /// One row per process: host, pid, threads, memory, CPU (`SHOW WORKERS`).
    Workers,
    /// `XMATCH`: for each row of `left`, its `k` nearest rows of `right` within a radius.
    Crossmatch {
        /// The rows to match.
        left: Box<Plan>,
        /// The rows they are matched to.
        right: Box<Plan>,
        /// Radius, k, columns.
        spec: CrossmatchSpec,
    },
    /// Write the input into a HATS catalog's partitions (`starflow hats import`).
    HatsWrite {
        /// Rows per HEALPix pixel at the highest order: (pixel, count) rows.
        counts: Box<Plan>,
        /// The rows, with their row ids (read once `counts` is complete).
        input: Box<Plan>,
        /// Partitions, folders, margin.
        spec: HatsWriteSpec,
    },
}

/// A crossmatch: rows meet on the worker of their HEALPix pixel at `order` (a right row also
/// goes to the workers of every pixel its radius reaches), where each left row finds its
/// nearest right rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrossmatchSpec {
    /// Match radius, arcseconds.
    pub radius_arcsec: f64,
    /// Matches kept per left row (nearest first).
    pub k: usize,
    /// HEALPix order of the partitioning.
    pub order: u8,
    /// RA and Dec columns (degrees) of the left input, by index.
    pub left_radec: (usize, usize),
    /// RA and Dec columns of the right input.
    pub right_radec: (usize, usize),
    /// Left input columns in the output, in order.
    pub left_out: Vec<usize>,
    /// Right input columns in the output, in order (after the left ones).
    pub right_out: Vec<usize>,
    /// Both sides are the same catalog: a row is never its own match.
    pub self_match: bool,
    /// Output schema: the left columns, the right columns, `_dist_arcsec`.
    #[serde(with = "starflow_catalogs::schema_serde")]
    pub schema: SchemaRef,
}

/// The column a scan with [`ScanSpec::row_ids`] adds last: partition index << 32 | row.
pub const ROW_ID: &str = "__row_id";

/// What a scan reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanSpec {
    /// Catalog name.
    pub catalog: String,
    /// Columns read, in output order.
    pub columns: Vec<String>,
    /// Indices of `columns` in the catalog schema.
    pub column_indices: Vec<usize>,
    /// The first `output_columns` of `columns` are emitted; the rest only feed the predicate.
    pub output_columns: usize,
    /// Pushed-down predicate, applied to every batch as it is read.
    pub predicate: Option<Expr>,
    /// Range bounds used to prune row groups.
    pub bounds: Vec<ColumnBound>,
    /// Partitions left after pruning, in catalog order.
    pub partitions: Vec<Partition>,
    /// Stop after this many rows pass the predicate (per worker).
    pub limit: Option<u64>,
    /// Rows per batch.
    pub batch_rows: usize,
    /// Pruning summary, for `EXPLAIN`.
    pub pruning: PruningSummary,
    /// Also emit [`ROW_ID`]: each row's partition and position in it, before the predicate
    /// (a crossmatch of a catalog with itself tells a row from its neighbours by it).
    pub row_ids: bool,
    /// Output schema.
    #[serde(with = "starflow_catalogs::schema_serde")]
    pub schema: SchemaRef,
}

impl From<&starflow_catalogs::PruneReport> for PruningSummary {
    fn from(r: &starflow_catalogs::PruneReport) -> Self {
        Self {
            files_total: r.files_total,
            files_kept: r.files_kept,
            row_groups_total: r.row_groups_total,
            row_groups_kept: r.row_groups_kept,
            rows_kept: r.rows_kept,
            lazy_files: r.lazy_files,
        }
    }
}

/// What pruning kept, for `EXPLAIN`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PruningSummary {
    /// Files in the catalog.
    pub files_total: usize,
    /// Files with a kept row group.
    pub files_kept: usize,
    /// Row groups in the catalog.
    pub row_groups_total: usize,
    /// Row groups kept.
    pub row_groups_kept: usize,
    /// Rows in kept row groups.
    pub rows_kept: u64,
    /// Files (HATS partitions) whose row groups each scanning worker prunes from the footer.
    #[serde(default)]
    pub lazy_files: usize,
}

/// Output columns of a projection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectSpec {
    /// Expression and output name of each column.
    pub columns: Vec<(Expr, String)>,
    /// Output schema.
    #[serde(with = "starflow_catalogs::schema_serde")]
    pub schema: SchemaRef,
}

/// Aggregate functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AggFunc {
    /// `COUNT(*)`
    CountStar,
    /// `COUNT(col)`: non-null, non-NaN values
    Count,
    /// `SUM(x)`
    Sum,
    /// `AVG(x)`
    Avg,
    /// `MIN(x)`
    Min,
    /// `MAX(x)`
    Max,
    /// `STDDEV(x)`: sample standard deviation
    Stddev,
}

/// One aggregate of a group-by. NULL and NaN inputs are skipped (as pandas does).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AggCall {
    /// The function.
    pub func: AggFunc,
    /// Its argument (None for `COUNT(*)`).
    pub arg: Option<Expr>,
    /// Output column name.
    pub name: String,
    /// Type of the argument.
    #[serde(with = "data_type_serde")]
    pub arg_type: DataType,
}

mod data_type_serde {
    use arrow_schema::DataType;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(t: &DataType, s: S) -> Result<S::Ok, S::Error> {
        t.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DataType, D::Error> {
        DataType::deserialize(d)
    }
}

impl AggCall {
    /// Type of the aggregate's result.
    pub fn output_type(&self) -> DataType {
        match self.func {
            AggFunc::CountStar | AggFunc::Count => DataType::Int64,
            AggFunc::Sum | AggFunc::Min | AggFunc::Max if self.arg_type.is_integer() => DataType::Int64,
            _ => DataType::Float64,
        }
    }
}

/// Group keys and aggregates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AggregateSpec {
    /// Key expressions and their output names.
    pub keys: Vec<(Expr, String)>,
    /// Aggregates.
    pub aggs: Vec<AggCall>,
    /// Output schema: keys then aggregates.
    #[serde(with = "starflow_catalogs::schema_serde")]
    pub schema: SchemaRef,
    /// Every group is finished on worker 0, so the result is there with no gather (one
    /// round of progress fewer): for results known to be small, such as a view's
    /// contributions from a release's files.
    #[serde(default)]
    pub on_first_worker: bool,
}

impl AggregateSpec {
    /// Builds the spec and its output schema from the input schema.
    pub fn new(keys: Vec<(Expr, String)>, aggs: Vec<AggCall>, input: &Schema) -> Result<Self, crate::PlanError> {
        let mut fields = Vec::new();
        for (e, name) in &keys {
            fields.push(Field::new(name, e.data_type(input)?, true));
        }
        for a in &aggs {
            fields.push(Field::new(&a.name, a.output_type(), true));
        }
        Ok(Self { keys, aggs, schema: std::sync::Arc::new(Schema::new(fields)), on_first_worker: false })
    }
}

/// One sort key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SortKey {
    /// Expression to order by.
    pub expr: Expr,
    /// `DESC`.
    pub descending: bool,
    /// `NULLS FIRST` (default: nulls last for ASC, first for DESC, as in PostgreSQL).
    pub nulls_first: bool,
}

/// A sort, optionally limited (top-k).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SortSpec {
    /// Keys, most significant first.
    pub keys: Vec<SortKey>,
    /// Keep only the first `limit` rows.
    pub limit: Option<u64>,
}

impl Plan {
    /// Output schema of the plan.
    pub fn schema(&self) -> SchemaRef {
        match self {
            Plan::Scan(s) => s.schema.clone(),
            Plan::Project { spec, .. } => spec.schema.clone(),
            Plan::Aggregate { spec, .. } => spec.schema.clone(),
            Plan::Filter { input, .. } | Plan::Sort { input, .. } | Plan::Limit { input, .. } => input.schema(),
            Plan::Workers => crate::system::workers_schema(),
            Plan::Crossmatch { spec, .. } => spec.schema.clone(),
            Plan::HatsWrite { .. } => hats::hats_write_schema(),
        }
    }

    /// The node's inputs (two for a crossmatch).
    pub fn inputs(&self) -> Vec<&Plan> {
        match self {
            Plan::Crossmatch { left, right, .. } => vec![left, right],
            Plan::HatsWrite { counts, input, .. } => vec![counts, input],
            other => other.input().into_iter().collect(),
        }
    }

    /// The node's single input, if it has exactly one.
    pub fn input(&self) -> Option<&Plan> {
        match self {
            Plan::Filter { input, .. }
            | Plan::Project { input, .. }
            | Plan::Aggregate { input, .. }
            | Plan::Sort { input, .. }
            | Plan::Limit { input, .. } => Some(input),
            Plan::Scan(_) | Plan::Workers | Plan::Crossmatch { .. } | Plan::HatsWrite { .. } => None,
        }
    }

    /// The node's inputs, to change them.
    fn inputs_mut(&mut self) -> Vec<&mut Plan> {
        match self {
            Plan::Crossmatch { left, right, .. } => vec![left.as_mut(), right.as_mut()],
            Plan::HatsWrite { counts, input, .. } => vec![counts.as_mut(), input.as_mut()],
            Plan::Filter { input, .. }
            | Plan::Project { input, .. }
            | Plan::Aggregate { input, .. }
            | Plan::Sort { input, .. }
            | Plan::Limit { input, .. } => vec![input.as_mut()],
            Plan::Scan(_) | Plan::Workers => vec![],
        }
    }

    /// The plan's scans, to change them.
    pub fn scans_mut(&mut self) -> Vec<&mut ScanSpec> {
        match self {
            Plan::Scan(s) => vec![s],
            other => other.inputs_mut().into_iter().flat_map(Plan::scans_mut).collect(),
        }
    }

    /// The plan's aggregates.
    pub fn aggregates_mut(&mut self) -> Vec<&mut AggregateSpec> {
        let mut inner: Vec<&mut AggregateSpec> = Vec::new();
        let own = match self {
            Plan::Aggregate { input, spec } => {
                inner.extend(input.aggregates_mut());
                Some(spec)
            }
            other => {
                inner.extend(other.inputs_mut().into_iter().flat_map(Plan::aggregates_mut));
                None
            }
        };
        inner.extend(own);
        inner
    }

    /// The plan's scans.
    pub fn scans(&self) -> Vec<&ScanSpec> {
        match self {
            Plan::Scan(s) => vec![s],
            other => other.inputs().into_iter().flat_map(Plan::scans).collect(),
        }
    }

    /// Names of the catalogs the plan scans.
    pub fn catalogs(&self) -> Vec<&str> {
        self.scans().into_iter().map(|s| s.catalog.as_str()).collect()
    }

    /// True when the output of this plan is already gathered, in order, on worker 0.
    pub fn is_gathered(&self) -> bool {
        match self {
            Plan::Sort { .. } | Plan::Limit { .. } | Plan::Workers => true,
            Plan::Project { input, .. } | Plan::Filter { input, .. } => input.is_gathered(),
            Plan::Aggregate { spec, .. } => spec.on_first_worker,
            Plan::Scan(_) | Plan::Crossmatch { .. } | Plan::HatsWrite { .. } => false,
        }
    }
}
