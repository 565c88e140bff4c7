//! Errors of planning (`PlanError`) and running (`RunError`) queries.

/// Errors found while turning SQL into a plan: the user can fix the statement.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The SQL did not parse; the message carries the line and column.
    #[error("syntax error: {0}")]
    Syntax(String),
    /// A column name matched nothing.
    #[error("column \"{column}\" not found in {scope}{}", hint(.nearest))]
    UnknownColumn {
        /// The name as written.
        column: String,
        /// Where it was looked up (e.g. `catalog "dp02"`).
        scope: String,
        /// The closest existing name, if any is close.
        nearest: Option<String>,
    },
    /// A catalog name matched nothing.
    #[error("catalog \"{catalog}\" not found{}", hint(.nearest))]
    UnknownCatalog {
        /// The name as written.
        catalog: String,
        /// The closest registered name.
        nearest: Option<String>,
    },
    /// An expression has the wrong type for where it is used.
    #[error("type error: {0}")]
    Type(String),
    /// A function name is not known.
    #[error("unknown function \"{name}\"{}", hint(.nearest))]
    UnknownFunction {
        /// The name as written.
        name: String,
        /// The closest supported function.
        nearest: Option<String>,
    },
    /// Valid SQL that starflow does not support (yet).
    #[error("not supported: {0}")]
    Unsupported(String),
    /// A catalog could not be opened.
    #[error(transparent)]
    Catalog(#[from] starflow_catalogs::CatalogError),
}

fn hint(nearest: &Option<String>) -> String {
    match nearest {
        Some(n) => format!(" (did you mean \"{n}\"?)"),
        None => String::new(),
    }
}

/// Errors while a query runs.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Reading data at rest failed (names the file).
    #[error(transparent)]
    Catalog(#[from] starflow_catalogs::CatalogError),
    /// An Arrow kernel failed (e.g. integer overflow in an expression).
    #[error("{context}: {source}")]
    Arrow {
        /// The operator or expression.
        context: String,
        /// The underlying error.
        source: arrow_schema::ArrowError,
    },
    /// The timely runtime could not start or a worker died.
    #[error("worker failure: {0}")]
    Worker(String),
    /// Setting up or keeping the connections between processes failed.
    #[error("cluster: {0}")]
    Cluster(String),
    /// Another process of the query failed.
    #[error("process {process}: {message}")]
    Remote {
        /// The process that failed.
        process: usize,
        /// Its error.
        message: String,
    },
    /// The query was cancelled by its client.
    #[error("query cancelled")]
    Cancelled,
    /// The client let too much of the result pile up on the server.
    #[error(
        "the client is not reading the result fast enough ({0} MiB waiting): query cancelled; COPY (query) TO 'file' writes large results on the server"
    )]
    SlowClient(u64),
    /// The server is shutting down (SIGTERM, or a `SHUTDOWN` statement).
    #[error("the server is shutting down")]
    ShuttingDown,
    /// The data does not allow what was asked (rows without a sky position in a HATS
    /// import, a catalog that changed while it was read, a file that cannot be written, …);
    /// the message says what.
    #[error("{0}")]
    Data(String),
    /// A rendering problem: this is a bug.
    #[error("internal error (this is a bug): {0}")]
    Internal(String),
}

/// The closest of `candidates` to `name` by edit distance, if reasonably close.
pub fn nearest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let lower = name.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (levenshtein(&lower, &c.to_lowercase()), c))
        .filter(|(d, c)| *d <= (c.len().max(name.len()) / 2).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.to_string())
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_finds_typos() {
        let cols = ["mag_i", "mag_g", "coord_ra", "objectId"];
        assert_eq!(nearest("mag_ii", cols).as_deref(), Some("mag_i"));
        assert_eq!(nearest("objectid", cols).as_deref(), Some("objectId"));
        assert_eq!(nearest("zzzzzzzzzz", cols), None);
    }
}
