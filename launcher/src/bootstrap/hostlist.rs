//! SLURM compressed host lists (`SLURM_JOB_NODELIST`), expanded as `scontrol show hostnames`
//! does: `node[01-04,07],gpu3` → node01 node02 node03 node04 node07 gpu3.
//!
//! - Hosts are separated by commas (or whitespace) outside brackets; commas inside brackets
//!   separate ranges of one host pattern.
//! - Inside brackets: single numbers and `lo-hi` ranges (inclusive); each number is zero-padded
//!   to the width of the text it comes from (of `lo` for a range): `n[008-011]` → n008..n011.
//! - Several bracket groups in one name expand as a cartesian product, the first group
//!   outermost: `rack[1-2]-node[1-2]` → rack1-node1 rack1-node2 rack2-node1 rack2-node2.
//! - Order and duplicates are kept (SLURM's rank layout follows this order).

use super::BootstrapError;

/// More hosts than any cluster has: a typo such as `n[0-99999999]` is refused, not expanded.
pub const MAX_HOSTS: usize = 1 << 20;

/// Expands a SLURM compressed host list into host names, in order.
///
/// An empty (or all-whitespace) list gives no hosts. Errors name the offending text:
/// unbalanced brackets, empty ranges (`n[]`, `n[1,]`, `n[-3]`), descending ranges
/// (`n[5-3]`), non-numeric ranges (`n[a-c]`), and lists of more than [`MAX_HOSTS`] hosts.
pub fn expand_hostlist(list: &str) -> Result<Vec<String>, BootstrapError> {
    let mut hosts = Vec::new();
    for pattern in split_top_level(list)? {
        for host in expand_pattern(pattern, list)? {
            if hosts.len() == MAX_HOSTS {
                return Err(BootstrapError::HostlistTooLarge { list: list.to_string(), limit: MAX_HOSTS });
            }
            hosts.push(host);
        }
    }
    Ok(hosts)
}

/// Splits at commas and whitespace outside brackets; checks that brackets balance and do not nest.
fn split_top_level(list: &str) -> Result<Vec<&str>, BootstrapError> {
    let unbalanced = || BootstrapError::UnbalancedBrackets { list: list.to_string() };
    let mut patterns = Vec::new();
    let mut in_brackets = false;
    let mut start = 0;
    for (i, c) in list.char_indices() {
        match c {
            '[' if in_brackets => return Err(unbalanced()),
            '[' => in_brackets = true,
            ']' if !in_brackets => return Err(unbalanced()),
            ']' => in_brackets = false,
            ',' if !in_brackets => {
                patterns.push(&list[start..i]);
                start = i + 1;
            }
            c if c.is_whitespace() && !in_brackets => {
                patterns.push(&list[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    if in_brackets {
        return Err(unbalanced());
    }
    patterns.push(&list[start..]);
    Ok(patterns.into_iter().filter(|p| !p.is_empty()).collect())
}

/// Expands one host pattern (brackets already known to balance and not to nest).
fn expand_pattern(pattern: &str, list: &str) -> Result<Vec<String>, BootstrapError> {
    let mut names = vec![String::new()];
    let mut rest = pattern;
    while let Some(open) = rest.find('[') {
        let close = open + rest[open..].find(']').expect("brackets were checked to balance");
        let literal = &rest[..open];
        let numbers = expand_group(&rest[open + 1..close], list)?;
        if names.len().saturating_mul(numbers.len()) > MAX_HOSTS {
            return Err(BootstrapError::HostlistTooLarge { list: list.to_string(), limit: MAX_HOSTS });
        }
        names = names
            .iter()
            .flat_map(|name| numbers.iter().map(move |number| format!("{name}{literal}{number}")))
            .collect();
        rest = &rest[close + 1..];
    }
    for name in &mut names {
        name.push_str(rest);
    }
    Ok(names)
}

/// Expands the inside of one bracket group, `01-04, 07`, into zero-padded numbers.
fn expand_group(group: &str, list: &str) -> Result<Vec<String>, BootstrapError> {
    let mut numbers = Vec::new();
    for item in group.split(',').map(str::trim) {
        let (lo_text, hi_text) = item.split_once('-').unwrap_or((item, item));
        let (lo_text, hi_text) = (lo_text.trim(), hi_text.trim());
        if lo_text.is_empty() || hi_text.is_empty() {
            return Err(BootstrapError::EmptyRange { list: list.to_string() });
        }
        let non_numeric = || BootstrapError::NonNumericRange { range: item.to_string(), list: list.to_string() };
        let lo = parse_number(lo_text).ok_or_else(non_numeric)?;
        let hi = parse_number(hi_text).ok_or_else(non_numeric)?;
        if hi < lo {
            return Err(BootstrapError::DescendingRange { range: item.to_string(), list: list.to_string() });
        }
        if (hi - lo) as u128 + numbers.len() as u128 >= MAX_HOSTS as u128 {
            return Err(BootstrapError::HostlistTooLarge { list: list.to_string(), limit: MAX_HOSTS });
        }
        let width = lo_text.len();
        numbers.extend((lo..=hi).map(|n| format!("{n:0width$}")));
    }
    Ok(numbers)
}

/// Decimal digits only (no sign, no spaces); None if not a number or too large.
fn parse_number(text: &str) -> Option<u64> {
    if text.bytes().all(|b| b.is_ascii_digit()) { text.parse().ok() } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(list: &str) -> Vec<String> {
        expand_hostlist(list).unwrap_or_else(|e| panic!("{list}: {e}"))
    }

    #[test]
    fn expands_ranges_singles_and_plain_hosts() {
        assert_eq!(expand("node[01-04,07],gpu3"), ["node01", "node02", "node03", "node04", "node07", "gpu3"]);
    }

    #[test]
    fn single_host_and_empty_list() {
        assert_eq!(expand("login1"), ["login1"]);
        assert_eq!(expand("n[5]"), ["n5"]);
        assert!(expand("").is_empty());
        assert!(expand("  ").is_empty());
    }

    #[test]
    fn zero_padding_follows_the_range_start() {
        assert_eq!(expand("n[008-011]"), ["n008", "n009", "n010", "n011"]);
        assert_eq!(expand("n[8-11]"), ["n8", "n9", "n10", "n11"]);
        assert_eq!(expand("n[098-101]"), ["n098", "n099", "n100", "n101"]);
        assert_eq!(expand("n[0]"), ["n0"]);
        assert_eq!(expand("n[00,7]"), ["n00", "n7"]);
    }

    #[test]
    fn several_ranges_and_several_prefixes() {
        assert_eq!(expand("a[1-2,5,7-8]"), ["a1", "a2", "a5", "a7", "a8"]);
        assert_eq!(expand("cn[1-2],gpu[10-11],login"), ["cn1", "cn2", "gpu10", "gpu11", "login"]);
        assert_eq!(expand("n[1-2]-ib"), ["n1-ib", "n2-ib"]);
        assert_eq!(expand("n2,n1,n2"), ["n2", "n1", "n2"]);
    }

    #[test]
    fn bracket_groups_expand_as_a_cartesian_product() {
        assert_eq!(expand("rack[1-2]-node[1-2]"), ["rack1-node1", "rack1-node2", "rack2-node1", "rack2-node2"]);
        assert_eq!(expand("r[1-2]n[01,03]x,z"), ["r1n01x", "r1n03x", "r2n01x", "r2n03x", "z"]);
    }

    #[test]
    fn whitespace_around_commas_is_tolerated() {
        assert_eq!(expand(" n[1 - 2 , 4], gpu1 ,gpu2 "), ["n1", "n2", "n4", "gpu1", "gpu2"]);
        assert_eq!(expand("a,,b"), ["a", "b"]);
    }

    #[test]
    fn unbalanced_brackets_are_refused() {
        for list in ["n[1-2", "n1-2]", "n[1-[2]]", "n]1[", "a,b["] {
            assert_eq!(expand_hostlist(list), Err(BootstrapError::UnbalancedBrackets { list: list.into() }), "{list}");
        }
    }

    #[test]
    fn empty_ranges_are_refused() {
        for list in ["n[]", "n[1,]", "n[-3]", "n[3-]", "n[ ]"] {
            assert_eq!(expand_hostlist(list), Err(BootstrapError::EmptyRange { list: list.into() }), "{list}");
        }
    }

    #[test]
    fn descending_ranges_are_refused() {
        let err = expand_hostlist("n[1,5-3]").unwrap_err();
        assert_eq!(err, BootstrapError::DescendingRange { range: "5-3".into(), list: "n[1,5-3]".into() });
        assert_eq!(err.to_string(), "descending range \"5-3\" in host list \"n[1,5-3]\"");
    }

    #[test]
    fn non_numeric_ranges_are_refused() {
        for (list, range) in [("n[a-c]", "a-c"), ("n[1-2-3]", "1-2-3"), ("n[+1]", "+1"), ("n[1x]", "1x")] {
            assert_eq!(
                expand_hostlist(list),
                Err(BootstrapError::NonNumericRange { range: range.into(), list: list.into() }),
                "{list}"
            );
        }
        let huge = "n[99999999999999999999999]";
        assert!(matches!(expand_hostlist(huge), Err(BootstrapError::NonNumericRange { .. })));
    }

    #[test]
    fn absurdly_large_lists_are_refused_without_expanding() {
        for list in ["n[0-99999999999]", "a[0-9999]b[0-9999]"] {
            assert!(matches!(expand_hostlist(list), Err(BootstrapError::HostlistTooLarge { .. })), "{list}");
        }
    }
}
