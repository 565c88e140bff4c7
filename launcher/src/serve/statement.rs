//! The statements a server understands besides queries: `SHOW CATALOGS`, `DESCRIBE name`,
//! `SHOW QUERIES`, `SHOW WORKERS`, `SHUTDOWN` and `COPY (query) TO 'file'`. Everything else
//! (`SELECT …`, `EXPLAIN SELECT …`) goes to the SQL planner.

use std::path::PathBuf;

/// A classified statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Statement {
    /// A query (or `EXPLAIN` of one), for the planner.
    Query(String),
    ShowCatalogs,
    Describe(String),
    ShowQueries,
    ShowWorkers,
    Shutdown,
    /// Run `query` and write its result, on the server, to `path` (format from the extension).
    Copy {
        query: String,
        path: PathBuf,
    },
}

/// Why a statement could not be classified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatementError {
    #[error("empty statement")]
    Empty,
    #[error("DESCRIBE needs a catalog name: DESCRIBE dp02")]
    DescribeWithoutName,
    #[error("{0}")]
    Copy(String),
}

/// Splits a statement into words, keeping quoted strings and parenthesised groups whole.
fn words(s: &str) -> Vec<&str> {
    s.split_whitespace().collect()
}

/// Classifies one statement (a trailing `;` is allowed).
pub fn classify(text: &str) -> Result<Statement, StatementError> {
    let text = text.trim().trim_end_matches(';').trim();
    if text.is_empty() {
        return Err(StatementError::Empty);
    }
    let upper: Vec<String> = words(text).iter().map(|w| w.to_ascii_uppercase()).collect();
    let u: Vec<&str> = upper.iter().map(String::as_str).collect();
    Ok(match u.as_slice() {
        ["SHOW", "CATALOGS"] | ["SHOW", "TABLES"] => Statement::ShowCatalogs,
        ["SHOW", "QUERIES"] => Statement::ShowQueries,
        ["SHOW", "WORKERS"] => Statement::ShowWorkers,
        ["SHUTDOWN"] => Statement::Shutdown,
        ["DESCRIBE" | "DESC"] => return Err(StatementError::DescribeWithoutName),
        ["DESCRIBE" | "DESC", _] => Statement::Describe(words(text)[1].trim_matches('"').to_string()),
        [first, ..] if *first == "COPY" || first.starts_with("COPY(") => copy(text)?,
        _ => Statement::Query(text.to_string()),
    })
}

/// `COPY (query) TO 'path'`.
fn copy(text: &str) -> Result<Statement, StatementError> {
    let usage = || StatementError::Copy("COPY needs the form COPY (SELECT …) TO 'file.parquet'".into());
    let rest = text[4..].trim_start();
    if !rest.starts_with('(') {
        return Err(usage());
    }
    // Find the parenthesis that closes the query, skipping quoted strings.
    let (mut depth, mut quote, mut close) = (0usize, None::<char>, None);
    for (i, c) in rest.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => {
                depth -= 1;
                if depth == 0 {
                    close = Some(i);
                    break;
                }
            }
            _ => {}
        }
    }
    let close = close.ok_or_else(|| StatementError::Copy("COPY: the query's parenthesis is never closed".into()))?;
    let query = rest[1..close].trim().to_string();
    let tail = rest[close + 1..].trim();
    let Some(target) = tail.strip_prefix("TO").or_else(|| tail.strip_prefix("to")).map(str::trim) else {
        return Err(usage());
    };
    let path = target.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')).ok_or_else(usage)?;
    if path.is_empty() || query.is_empty() {
        return Err(usage());
    }
    Ok(Statement::Copy { query, path: PathBuf::from(path) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_classified() {
        assert_eq!(classify(" show catalogs ;"), Ok(Statement::ShowCatalogs));
        assert_eq!(classify("SHOW WORKERS"), Ok(Statement::ShowWorkers));
        assert_eq!(classify("show queries;"), Ok(Statement::ShowQueries));
        assert_eq!(classify("describe dp02;"), Ok(Statement::Describe("dp02".into())));
        assert_eq!(classify("DESCRIBE"), Err(StatementError::DescribeWithoutName));
        assert_eq!(classify("shutdown;"), Ok(Statement::Shutdown));
        assert_eq!(classify(";"), Err(StatementError::Empty));
        assert_eq!(classify("SELECT 1 FROM t;"), Ok(Statement::Query("SELECT 1 FROM t".into())));
        assert_eq!(classify("explain SELECT 1 FROM t"), Ok(Statement::Query("explain SELECT 1 FROM t".into())));
    }

    #[test]
    fn copy_takes_the_query_in_parentheses_and_a_quoted_path() {
        assert_eq!(
            classify("COPY (SELECT a FROM t WHERE b = ')' AND f(c) > 1) TO '/tmp/out.parquet';"),
            Ok(Statement::Copy {
                query: "SELECT a FROM t WHERE b = ')' AND f(c) > 1".into(),
                path: "/tmp/out.parquet".into()
            })
        );
        assert!(matches!(classify("COPY t TO 'x.parquet'"), Err(StatementError::Copy(_))));
        assert!(matches!(classify("COPY (SELECT 1 FROM t TO 'x'"), Err(StatementError::Copy(_))));
        assert!(matches!(classify("COPY (SELECT 1 FROM t) TO x.parquet"), Err(StatementError::Copy(_))));
    }
}
