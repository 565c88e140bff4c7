//! Line editing for the interactive REPL: statements span lines until a `;` (outside quotes
//! and comments), and Tab completes catalog names, column names and SQL keywords.

use std::collections::BTreeSet;

use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Helper};

const KEYWORDS: &[&str] = &[
    "SELECT",
    "REPORT",
    "FROM",
    "WHERE",
    "GROUP",
    "BY",
    "HAVING",
    "ORDER",
    "LIMIT",
    "TOP",
    "DISTINCT",
    "AS",
    "AND",
    "OR",
    "NOT",
    "IS",
    "NULL",
    "IN",
    "BETWEEN",
    "LIKE",
    "ASC",
    "DESC",
    "NULLS",
    "FIRST",
    "LAST",
    "COUNT",
    "SUM",
    "AVG",
    "MIN",
    "MAX",
    "STDDEV",
    "VARIANCE",
    "CONTAINS",
    "POINT",
    "CIRCLE",
    "BOX",
    "DISTANCE",
    "EXPLAIN",
    "SHOW",
    "CATALOGS",
    "QUERIES",
    "WORKERS",
    "DESCRIBE",
    "COPY",
    "TO",
    "SHUTDOWN",
    "CREATE",
    "MATERIALIZED",
    "VIEW",
    "VIEWS",
    "DROP",
    "SUBSCRIBE",
    "INGEST",
    "RELEASE",
    "RELEASES",
    "INTO",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "CAST",
];

/// Splits `text` into complete statements (each without its `;`) and what follows the last
/// `;` (an unfinished statement, possibly empty). Quotes and `--` comments are respected.
pub fn split_statements(text: &str) -> (Vec<String>, String) {
    let mut statements = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                current.push(c);
                if c == q {
                    quote = None;
                }
            }
            None => match c {
                '\'' | '"' => {
                    quote = Some(c);
                    current.push(c);
                }
                '-' if chars.peek() == Some(&'-') => {
                    // A comment runs to the end of the line; keep the newline.
                    for c in chars.by_ref() {
                        if c == '\n' {
                            current.push('\n');
                            break;
                        }
                    }
                }
                ';' => {
                    if !current.trim().is_empty() {
                        statements.push(current.trim().to_string());
                    }
                    current.clear();
                }
                _ => current.push(c),
            },
        }
    }
    (statements, current.trim().to_string())
}

/// Completion words and statement validation.
pub struct SqlHelper {
    /// Catalog and column names.
    pub names: BTreeSet<String>,
}

impl Completer for SqlHelper {
    type Candidate = Pair;

    fn complete(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> rustyline::Result<(usize, Vec<Pair>)> {
        let start = line[..pos]
            .char_indices()
            .rev()
            .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let word = &line[start..pos];
        if word.is_empty() {
            return Ok((pos, Vec::new()));
        }
        let lower = word.to_lowercase();
        let upper_case = word.chars().all(|c| !c.is_lowercase());
        let mut candidates: Vec<Pair> = self
            .names
            .iter()
            .filter(|n| n.to_lowercase().starts_with(&lower))
            .map(|n| Pair { display: n.clone(), replacement: n.clone() })
            .collect();
        candidates.extend(KEYWORDS.iter().filter(|k| k.to_lowercase().starts_with(&lower)).map(|k| {
            let text = if upper_case { k.to_string() } else { k.to_lowercase() };
            Pair { display: text.clone(), replacement: text }
        }));
        Ok((start, candidates))
    }
}

impl Hinter for SqlHelper {
    type Hint = String;
}

impl Highlighter for SqlHelper {}

impl Validator for SqlHelper {
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        let input = ctx.input().trim();
        if input.is_empty() || input.starts_with('\\') {
            return Ok(ValidationResult::Valid(None));
        }
        let (_, rest) = split_statements(input);
        Ok(if rest.is_empty() { ValidationResult::Valid(None) } else { ValidationResult::Incomplete })
    }
}

impl Helper for SqlHelper {}

#[cfg(test)]
mod tests {
    use super::*;
    use rustyline::history::DefaultHistory;

    #[test]
    fn statements_end_at_semicolons_outside_quotes_and_comments() {
        let (done, rest) = split_statements("SELECT ';' FROM t; -- a ; comment\nSELECT 2\nFROM t;\nSELECT 3");
        assert_eq!(done, vec!["SELECT ';' FROM t".to_string(), "SELECT 2\nFROM t".to_string()]);
        assert_eq!(rest, "SELECT 3");
        assert_eq!(split_statements(";;  ;"), (vec![], String::new()));
    }

    #[test]
    fn completion_offers_catalogs_columns_and_keywords() {
        let helper = SqlHelper { names: ["dp02", "detect_isPrimary", "mag_i"].map(String::from).into() };
        let history = DefaultHistory::new();
        let ctx = Context::new(&history);
        let (start, c) = helper.complete("SELECT mag_i FROM dp", 20, &ctx).unwrap();
        assert_eq!(start, 18);
        assert_eq!(c.iter().map(|p| p.replacement.as_str()).collect::<Vec<_>>(), ["dp02"]);
        let (_, c) = helper.complete("sel", 3, &ctx).unwrap();
        assert_eq!(c.iter().map(|p| p.replacement.as_str()).collect::<Vec<_>>(), ["select"]);
        let (_, c) = helper.complete("SELECT DE", 9, &ctx).unwrap();
        let words: Vec<_> = c.iter().map(|p| p.replacement.as_str()).collect();
        assert_eq!(words, ["detect_isPrimary", "DESC", "DESCRIBE"]);
        // Multi-byte separators (a full-width comma, a non-breaking space) are word ends.
        let (start, c) = helper.complete("SELECT，ma", 11, &ctx).unwrap();
        assert_eq!((start, c[0].replacement.as_str()), (9, "mag_i"));
        let (start, _) = helper.complete("SELECT\u{a0}ma", 10, &ctx).unwrap();
        assert_eq!(start, 8);
    }
}
