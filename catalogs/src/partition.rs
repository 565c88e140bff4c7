//! Partitions: the unit of work handed to a worker (a row-group range of one file).

use serde::{Deserialize, Serialize};

/// One unit of scan work: some row groups of one file of a catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partition {
    /// Position of the partition in catalog order (files in path order, row groups in file order).
    pub index: usize,
    /// Index of the file in the catalog's file list.
    pub file: usize,
    /// Consecutive row groups of that file.
    pub row_groups: std::ops::Range<usize>,
    /// Rows in those row groups.
    pub rows: u64,
}

impl Partition {
    /// The value of the virtual file column ([`crate::FILE_COLUMN`]) for this partition's
    /// rows: its file's index times 2^32 plus its first row group, so that a file read in
    /// several partitions tells them apart ([`file_part`] splits it again).
    pub fn file_part(&self) -> i64 {
        ((self.file as i64) << 32) | (self.row_groups.start as i64 & 0xFFFF_FFFF)
    }
}

/// (file index, first row group) of a value of the virtual file column.
pub fn file_part(value: i64) -> (usize, usize) {
    ((value >> 32) as usize, (value & 0xFFFF_FFFF) as usize)
}

/// The worker (of `peers`) that reads each partition: in catalog order, each goes to the
/// worker with the fewest rows so far (the lowest-numbered on a tie), so partitions of equal
/// size go round robin and a few unequal ones still split evenly. Every process computes
/// the same shares. A lazy partition (rows unknown) counts as one row.
pub fn owners(partitions: &[Partition], peers: usize) -> Vec<usize> {
    use std::cmp::Reverse;
    let mut load: std::collections::BinaryHeap<Reverse<(u64, usize)>> =
        (0..peers.max(1)).map(|w| Reverse((0, w))).collect();
    partitions
        .iter()
        .map(|p| {
            let Reverse((rows, worker)) = load.pop().expect("at least one worker");
            load.push(Reverse((rows + p.rows.max(1), worker)));
            worker
        })
        .collect()
}

/// The partitions process `process` reads (its workers being `threads` of `peers` in all),
/// in catalog order: those whose [`owners`] worker is one of its own.
pub fn process_share(partitions: &[Partition], peers: usize, threads: usize, process: usize) -> Vec<&Partition> {
    let threads = threads.max(1);
    partitions.iter().zip(owners(partitions, peers)).filter(|(_, w)| w / threads == process).map(|(p, _)| p).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partition(index: usize, rows: u64) -> Partition {
        Partition { index, file: index, row_groups: 0..1, rows }
    }

    #[test]
    fn equal_partitions_go_round_robin_and_unequal_ones_split_evenly() {
        let equal: Vec<Partition> = (0..7).map(|i| partition(i, 100)).collect();
        assert_eq!(owners(&equal, 3), vec![0, 1, 2, 0, 1, 2, 0]);
        // Row groups of two files (16K each, then each file's shorter last one).
        let rows = [16, 16, 16, 16, 16, 13, 16, 16, 16, 7];
        let parts: Vec<Partition> = rows.iter().enumerate().map(|(i, &r)| partition(i, r)).collect();
        let shares = owners(&parts, 2);
        let load = |w| rows.iter().zip(&shares).filter(|(_, o)| **o == w).map(|(r, _)| r).sum::<u64>();
        assert_eq!((load(0), load(1)), (71, 77));
        assert_eq!(owners(&parts, 1), vec![0; 10]);
        // Two processes of two workers: each reads what its own workers own.
        let four = owners(&parts, 4);
        for process in 0..2 {
            let share: Vec<usize> = process_share(&parts, 4, 2, process).iter().map(|p| p.index).collect();
            let expected: Vec<usize> = (0..10).filter(|&i| four[i] / 2 == process).collect();
            assert_eq!(share, expected);
        }
        // Unknown sizes (lazy files) go round robin.
        assert_eq!(owners(&[partition(0, 0), partition(1, 0), partition(2, 0)], 2), vec![0, 1, 0]);
    }

    #[test]
    fn the_file_column_value_keeps_file_and_row_group() {
        let p = Partition { index: 3, file: 70_000, row_groups: 12..14, rows: 9 };
        assert_eq!(file_part(p.file_part()), (70_000, 12));
    }
}
