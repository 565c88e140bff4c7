//! The statements a server understands besides queries: `SHOW CATALOGS`, `DESCRIBE name`,
//! `SHOW QUERIES`, `SHOW WORKERS`, `REPORT [id]`, `SHUTDOWN` and `COPY (query) TO 'file'`. Everything else
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
    /// `REPORT [query id]`: the performance report (HTML) of that query, or of the last one.
    Report(Option<u64>),
    Shutdown,
    /// Run `query` and write its result, on the server, to `path` (format from the extension).
    Copy {
        query: String,
        path: PathBuf,
    },
    /// `CREATE MATERIALIZED VIEW name AS SELECT …`.
    CreateView {
        name: String,
        query: String,
    },
    /// `DROP VIEW name`.
    DropView(String),
    ShowViews,
    /// `SUBSCRIBE view`.
    Subscribe(String),
    /// `SHOW RELEASES [catalog]`.
    ShowReleases(Option<String>),
    /// `INGEST RELEASE 'label' INTO catalog FROM 'path'`.
    Ingest {
        label: String,
        catalog: String,
        path: String,
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
    #[error("{0}")]
    Usage(&'static str),
}

/// A word or a quoted string, with where it starts.
struct Token<'a> {
    text: std::borrow::Cow<'a, str>,
    quoted: bool,
    start: usize,
}

/// Words and 'quoted strings' ('' inside quotes is a quote).
fn tokens(s: &str) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    let mut chars = s.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '\'' {
            chars.next();
            let mut text = String::new();
            while let Some((_, c)) = chars.next() {
                if c == '\'' {
                    if chars.peek().is_some_and(|&(_, n)| n == '\'') {
                        chars.next();
                        text.push('\'');
                    } else {
                        break;
                    }
                } else {
                    text.push(c);
                }
            }
            out.push(Token { text: text.into(), quoted: true, start });
        } else {
            let mut end = start;
            while let Some(&(i, c)) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                end = i + c.len_utf8();
                chars.next();
            }
            out.push(Token { text: s[start..end].into(), quoted: false, start });
        }
    }
    out
}

fn is(t: Option<&Token>, word: &str) -> bool {
    t.is_some_and(|t| !t.quoted && t.text.eq_ignore_ascii_case(word))
}

const REPORT_USAGE: &str = "use REPORT (the last query) or REPORT <query id> (as SHOW QUERIES lists it)";
const CREATE_USAGE: &str = "use CREATE MATERIALIZED VIEW name AS SELECT …";
const INGEST_USAGE: &str = "use INGEST RELEASE 'label' INTO catalog FROM 'path'";

fn create_view(text: &str) -> Result<Statement, StatementError> {
    let t = tokens(text);
    let skip = if is(t.get(1), "MATERIALIZED") { 2 } else { 1 };
    if !is(t.get(skip), "VIEW") {
        return Err(StatementError::Usage(CREATE_USAGE));
    }
    let (Some(name), true) = (t.get(skip + 1), is(t.get(skip + 2), "AS")) else {
        return Err(StatementError::Usage(CREATE_USAGE));
    };
    let Some(query) = t.get(skip + 3) else { return Err(StatementError::Usage(CREATE_USAGE)) };
    Ok(Statement::CreateView {
        name: name.text.trim_matches('"').to_string(),
        query: text[query.start..].trim().to_string(),
    })
}

fn ingest(text: &str) -> Result<Statement, StatementError> {
    let t = tokens(text);
    match t.as_slice() {
        [_, release, label, into, catalog, from, path]
            if is(Some(release), "RELEASE")
                && label.quoted
                && is(Some(into), "INTO")
                && is(Some(from), "FROM")
                && path.quoted =>
        {
            Ok(Statement::Ingest {
                label: label.text.to_string(),
                catalog: catalog.text.trim_matches('"').to_string(),
                path: path.text.to_string(),
            })
        }
        _ => Err(StatementError::Usage(INGEST_USAGE)),
    }
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
        ["REPORT"] => Statement::Report(None),
        ["REPORT", id] => Statement::Report(Some(id.parse().map_err(|_| StatementError::Usage(REPORT_USAGE))?)),
        ["REPORT", ..] => return Err(StatementError::Usage(REPORT_USAGE)),
        ["SHUTDOWN"] => Statement::Shutdown,
        ["SHOW", "VIEWS"] => Statement::ShowViews,
        ["SUBSCRIBE", _] | ["SUBSCRIBE", "TO", _] => {
            Statement::Subscribe(words(text).last().expect("a word").trim_matches('"').to_string())
        }
        ["SHOW", "RELEASES"] => Statement::ShowReleases(None),
        ["SHOW", "RELEASES", _] => Statement::ShowReleases(Some(words(text)[2].trim_matches('"').to_string())),
        ["DROP", "VIEW", _] => Statement::DropView(words(text)[2].trim_matches('"').to_string()),
        ["DROP", "VIEW", "IF", "EXISTS", _] => Statement::DropView(words(text)[4].trim_matches('"').to_string()),
        ["CREATE", ..] => create_view(text)?,
        ["INGEST", ..] => ingest(text)?,
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
    let Some(target) = tail.get(..2).filter(|t| t.eq_ignore_ascii_case("TO")).map(|_| tail[2..].trim()) else {
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
    fn views_and_releases_are_classified() {
        assert_eq!(
            classify("create materialized view v1 AS SELECT tract, COUNT(*) FROM dp02 GROUP BY tract;"),
            Ok(Statement::CreateView {
                name: "v1".into(),
                query: "SELECT tract, COUNT(*) FROM dp02 GROUP BY tract".into()
            })
        );
        assert!(matches!(classify("CREATE MATERIALIZED VIEW v1 SELECT 1"), Err(StatementError::Usage(_))));
        assert_eq!(classify("DROP VIEW v1"), Ok(Statement::DropView("v1".into())));
        assert_eq!(classify("show views"), Ok(Statement::ShowViews));
        assert_eq!(classify("SHOW RELEASES dp02"), Ok(Statement::ShowReleases(Some("dp02".into()))));
        assert_eq!(
            classify("INGEST RELEASE 'DR2 ''final''' INTO dp02 FROM '/data/dr 2'"),
            Ok(Statement::Ingest { label: "DR2 'final'".into(), catalog: "dp02".into(), path: "/data/dr 2".into() })
        );
        assert!(matches!(classify("INGEST RELEASE dr2 INTO dp02 FROM '/x'"), Err(StatementError::Usage(_))));
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
