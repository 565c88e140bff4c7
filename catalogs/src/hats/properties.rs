//! Java-style `.properties` files (`hats.properties`, `collection.properties`): `key=value`
//! (or `key: value`, or `key value`) lines, `#`/`!` comments, backslash escapes and
//! continuation lines, as `jproperties` writes and reads them.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{CatalogError, Result};

/// The keys and values of a properties file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Properties(pub BTreeMap<String, String>);

impl Properties {
    /// Reads and parses `path`.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| CatalogError::Io { path: path.into(), source })?;
        Ok(Self::parse(&text))
    }

    /// Parses the text of a properties file.
    pub fn parse(text: &str) -> Self {
        let mut out = BTreeMap::new();
        let mut logical = String::new();
        for line in text.lines() {
            let piece = line.trim_start();
            if logical.is_empty() && (piece.is_empty() || piece.starts_with('#') || piece.starts_with('!')) {
                continue;
            }
            // An odd number of trailing backslashes continues the line.
            let trailing = piece.chars().rev().take_while(|&c| c == '\\').count();
            if trailing % 2 == 1 {
                logical.push_str(&piece[..piece.len() - 1]);
                continue;
            }
            logical.push_str(piece);
            let (key, value) = split_entry(&logical);
            out.insert(key, value);
            logical.clear();
        }
        if !logical.is_empty() {
            let (key, value) = split_entry(&logical);
            out.insert(key, value);
        }
        Self(out)
    }

    /// The value of `key`, trimmed; None when absent or empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    /// Sets `key`.
    pub fn set(&mut self, key: &str, value: impl ToString) {
        self.0.insert(key.to_string(), value.to_string());
    }

    /// The file's text, keys in `order` first, then the rest in key order; `:` and `=` in
    /// values escaped as `jproperties` does.
    pub fn render(&self, comment: &str, order: &[&str]) -> String {
        let mut text = format!("#{comment}\n");
        let mut line = |k: &str, v: &str| {
            text.push_str(&escape(k, true));
            text.push('=');
            text.push_str(&escape(v, false));
            text.push('\n');
        };
        for k in order {
            if let Some(v) = self.0.get(*k) {
                line(k, v);
            }
        }
        for (k, v) in &self.0 {
            if !order.contains(&k.as_str()) {
                line(k, v);
            }
        }
        text
    }
}

/// Splits a logical line at the first unescaped `=`, `:` or whitespace.
fn split_entry(line: &str) -> (String, String) {
    let mut key = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    key.push(unescape_char(next, &mut chars));
                }
            }
            '=' | ':' => break,
            c if c.is_whitespace() => {
                // Whitespace, then optionally one `=` or `:`.
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
                if chars.peek().is_some_and(|&c| c == '=' || c == ':') {
                    chars.next();
                }
                break;
            }
            c => key.push(c),
        }
    }
    while chars.peek().is_some_and(|c| c.is_whitespace()) {
        chars.next();
    }
    let mut value = String::new();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                value.push(unescape_char(next, &mut chars));
            }
        } else {
            value.push(c);
        }
    }
    (key, value)
}

fn unescape_char(c: char, rest: &mut std::iter::Peekable<std::str::Chars<'_>>) -> char {
    match c {
        'n' => '\n',
        't' => '\t',
        'r' => '\r',
        'f' => '\u{c}',
        'u' => {
            let hex: String = (0..4).filter_map(|_| rest.next()).collect();
            u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32).unwrap_or('\u{fffd}')
        }
        other => other,
    }
}

fn escape(s: &str, key: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            '=' | ':' | '#' | '!' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            ' ' if key || i == 0 => out.push_str("\\ "),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_hats_writes() {
        let text = "#HATS catalog\nobs_collection=small_sky\ndataproduct_type=object\nhats_nrows=131\n\
                    hats_col_ra=ra\nhats_creation_date=2024-10-21T14\\:38UTC\n! comment\n  spaced : value \n\
                    long=a\\\n    b\nnpix=.parquet\n";
        let p = Properties::parse(text);
        assert_eq!(p.get("obs_collection"), Some("small_sky"));
        assert_eq!(p.get("hats_nrows"), Some("131"));
        assert_eq!(p.get("hats_creation_date"), Some("2024-10-21T14:38UTC"));
        assert_eq!(p.get("spaced"), Some("value"));
        assert_eq!(p.get("long"), Some("ab"));
        assert_eq!(p.get("missing"), None);
    }

    #[test]
    fn renders_what_it_parses() {
        let mut p = Properties::default();
        p.set("obs_collection", "my cat");
        p.set("hats_creation_date", "2026-12-01T22:00UTC");
        p.set("odd key", "x=y#z");
        let back = Properties::parse(&p.render("HATS catalog", &["obs_collection"]));
        assert_eq!(back, p);
    }
}
