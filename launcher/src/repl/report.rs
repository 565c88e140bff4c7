//! `REPORT [id] [TO 'file.html']` in the REPL: the server renders the report of a finished
//! query (by default the last one this session ran), and the REPL writes it where the user
//! is, not on the server.

use std::path::PathBuf;

use anyhow::{Result, bail};

/// A `REPORT` statement as the REPL reads it.
#[derive(Debug, PartialEq, Eq)]
pub struct ReportRequest {
    /// The query, if named.
    pub id: Option<u64>,
    /// Where to write the HTML (None: standard output).
    pub to: Option<PathBuf>,
}

const USAGE: &str = "use REPORT [query id] [TO 'file.html']";

/// `Some` if `sql` is a `REPORT` statement.
pub fn parse(sql: &str) -> Option<Result<ReportRequest>> {
    let sql = sql.trim().trim_end_matches(';').trim();
    let first = sql.split_whitespace().next()?;
    if !first.eq_ignore_ascii_case("REPORT") {
        return None;
    }
    Some(parse_rest(sql[first.len()..].trim()))
}

fn parse_rest(rest: &str) -> Result<ReportRequest> {
    let (head, to) = match rest.find('\'') {
        Some(q) => {
            let quoted = rest[q..].trim();
            if !quoted.ends_with('\'') || quoted.len() < 2 {
                bail!("{USAGE}: the file name needs closing quotes");
            }
            let path = quoted[1..quoted.len() - 1].replace("''", "'");
            (&rest[..q], Some(PathBuf::from(path)))
        }
        None => (rest, None),
    };
    let words: Vec<&str> = head.split_whitespace().collect();
    let (id_word, to_word) = match (words.as_slice(), to.is_some()) {
        ([], false) => (None, None),
        ([id], false) => (Some(*id), None),
        ([t], true) => (None, Some(*t)),
        ([id, t], true) => (Some(*id), Some(*t)),
        _ => bail!(USAGE),
    };
    if to_word.is_some_and(|t| !t.eq_ignore_ascii_case("TO")) {
        bail!(USAGE);
    }
    let id = match id_word {
        Some(w) => Some(w.parse::<u64>().map_err(|_| anyhow::anyhow!("{USAGE}: \"{w}\" is not a query id"))?),
        None => None,
    };
    Ok(ReportRequest { id, to })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(sql: &str) -> ReportRequest {
        parse(sql).expect("a REPORT statement").expect("well formed")
    }

    #[test]
    fn forms() {
        assert!(parse("SELECT 1").is_none());
        assert_eq!(ok("REPORT"), ReportRequest { id: None, to: None });
        assert_eq!(ok("report 12;"), ReportRequest { id: Some(12), to: None });
        assert_eq!(ok("REPORT TO 'r.html'"), ReportRequest { id: None, to: Some("r.html".into()) });
        assert_eq!(
            ok("REPORT 3 to '/tmp/it''s.html'"),
            ReportRequest { id: Some(3), to: Some("/tmp/it's.html".into()) }
        );
        for bad in ["REPORT x", "REPORT 3 4", "REPORT INTO 'f'", "REPORT TO 'f", "REPORT 1 2 TO 'f'"] {
            assert!(parse(bad).expect("a REPORT statement").is_err(), "{bad}");
        }
    }
}
