//! The partitioning of a catalog into HATS pixels from its row counts at the highest order:
//! hats-import's default (`drop_empty_siblings`), so both tools cut a catalog the same way.
//!
//! The starting order is the shallowest at which no pixel holds more than `threshold` rows
//! (hats-import's `use_lower_order`). Going from that order − 1 down to `lowest`, a pixel whose children hold at most
//! `threshold` rows in all, and not all in a single child, becomes one partition for its whole
//! area (a lower order overrides a higher one); a highest-order pixel no ancestor takes is a
//! partition of its own.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{CatalogError, Result};

/// Partitions (order, pixel) with their row counts, sorted by order-29 range.
pub fn alignment(
    histogram: &BTreeMap<u64, u64>,
    highest_order: u8,
    lowest_order: u8,
    threshold: u64,
) -> Result<Vec<(u8, u64, u64)>> {
    if lowest_order > highest_order || highest_order > 29 {
        return Err(CatalogError::InvalidOption(format!(
            "HEALPix orders: lowest {lowest_order} must be at most highest {highest_order}, and highest at most 29"
        )));
    }
    if let Some((&pixel, &rows)) = histogram.iter().find(|(_, n)| **n > threshold) {
        return Err(CatalogError::InvalidOption(format!(
            "pixel {pixel} of order {highest_order} alone holds {rows} rows, over the threshold of {threshold}: \
             raise --highest-order or --threshold"
        )));
    }
    // Row counts of every non-empty pixel, per order.
    let h = usize::from(highest_order);
    let mut sums: Vec<BTreeMap<u64, u64>> = vec![BTreeMap::new(); h + 1];
    sums[h] = histogram.iter().filter(|(_, n)| **n > 0).map(|(p, n)| (*p, *n)).collect();
    for order in (usize::from(lowest_order)..h).rev() {
        let (lower, upper) = sums.split_at_mut(order + 1);
        for (&p, &n) in &upper[0] {
            *lower[order].entry(p >> 2).or_default() += n;
        }
    }
    // hats-import's `use_lower_order`: start from the shallowest order at and below which
    // no pixel holds more than the threshold.
    let mut h = h;
    while h > usize::from(lowest_order) && sums[h - 1].values().all(|&n| n <= threshold) {
        h -= 1;
    }
    // Pixels that collapse (their whole area is one partition).
    let mut collapse: Vec<BTreeSet<u64>> = vec![BTreeSet::new(); h + 1];
    for order in usize::from(lowest_order)..h {
        for (&p, &sum) in &sums[order] {
            let max = (0..4).filter_map(|c| sums[order + 1].get(&(p * 4 + c))).copied().max().unwrap_or(0);
            if sum != max && sum <= threshold {
                collapse[order].insert(p);
            }
        }
    }
    let mut out: BTreeMap<(u64, u8), u64> = BTreeMap::new();
    for &p in sums[h].keys() {
        let order = (usize::from(lowest_order)..h).find(|&o| collapse[o].contains(&(p >> (2 * (h - o))))).unwrap_or(h);
        let pixel = p >> (2 * (h - order));
        let start = pixel << (2 * (29 - order));
        out.entry((start, order as u8)).or_insert(sums[order][&pixel]);
    }
    Ok(out.into_iter().map(|((start, order), rows)| (order, start >> (2 * (29 - u32::from(order))), rows)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collapses_like_hats_import() {
        // Order 1: pixel 0's children (order 1 pixels 0..4) hold 3, 4, 0, 0 rows; pixel 1's
        // all rows sit in one child (kept at order 1); pixel 2 holds more than the threshold.
        let mut h = BTreeMap::new();
        h.insert(0, 3);
        h.insert(1, 4);
        h.insert(5, 6);
        h.insert(8, 9);
        h.insert(9, 9);
        let parts = alignment(&h, 1, 0, 10).unwrap();
        assert_eq!(parts, vec![(0, 0, 7), (1, 5, 6), (1, 8, 9), (1, 9, 9)]);
        // Every order-0 pixel under the threshold: the cut starts at order 0.
        let parts = alignment(&h, 1, 0, 20).unwrap();
        assert_eq!(parts, vec![(0, 0, 7), (0, 1, 6), (0, 2, 18)]);
        // Lowest order 1: nothing collapses to order 0.
        let parts = alignment(&h, 1, 1, 10).unwrap();
        assert_eq!(parts, vec![(1, 0, 3), (1, 1, 4), (1, 5, 6), (1, 8, 9), (1, 9, 9)]);
        assert!(alignment(&h, 1, 0, 8).unwrap_err().to_string().contains("over the threshold"));
    }
}
