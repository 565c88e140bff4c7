//! Releases of a catalog: manifests and the delta between two releases.
//!
//! A manifest lists a release's files (partitions) with size, rows, schema fingerprint and a
//! content checksum. A new release is compared with the previous one file by file: a file
//! whose checksum the previous release has is unchanged (wherever it now lives); a file
//! under a path the previous release had, with another checksum, is replaced; others are
//! added; previous files not matched are removed. Checksums of files whose path, size and
//! modification time equal the previous manifest's are reused instead of re-reading them
//! (as git's index does), and a checksum is computed only when it can decide something: when
//! a new file and an unmatched previous file have the same size (a copy or a rename). Other
//! entries keep an empty checksum until a later release needs it.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use crate::error::{CatalogError, Result};
use crate::parquet::{Job, ParquetCatalog, Prefetch};

/// A release that brings at most this many files has their footers read ahead, and keeps
/// them until its views are updated.
const KEPT_FOOTERS: usize = 64;

/// One file of a release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// Path relative to the release root.
    pub path: String,
    /// Bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the epoch (for reusing checksums).
    pub mtime_ns: u64,
    /// Device and inode of the file (a hard link into a new release folder is the same file).
    #[serde(default)]
    pub file_id: (u64, u64),
    /// Rows.
    pub rows: u64,
    /// Fingerprint of the file's Arrow schema.
    pub schema: String,
    /// Content checksum (hex).
    pub checksum: String,
    /// Stable partition id: kept while the content is unchanged, new for new content.
    pub partition: u64,
}

/// What one release of a catalog is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Catalog name.
    pub catalog: String,
    /// Release number (the timestamp of the catalog's differential inputs), from 1.
    pub release: u64,
    /// The release's label (unique per catalog).
    pub label: String,
    /// Where its files are (as given when it was ingested).
    pub root: String,
    /// Seconds since the epoch when it was ingested.
    pub created_unix: u64,
    /// Files in path order.
    pub files: Vec<ManifestFile>,
    /// The next unused partition id.
    pub next_partition: u64,
}

impl Manifest {
    /// Rows in the release.
    pub fn rows(&self) -> u64 {
        self.files.iter().map(|f| f.rows).sum()
    }

    /// The absolute path of one of its files.
    pub fn file_path(&self, file: &ManifestFile) -> PathBuf {
        Path::new(&self.root).join(&file.path)
    }
}

/// How a release differs from the previous one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReleaseDelta {
    /// New content (files of the new release).
    pub added: Vec<ManifestFile>,
    /// Same path, new content: (previous, new).
    pub replaced: Vec<(ManifestFile, ManifestFile)>,
    /// Files of the previous release that are gone.
    pub removed: Vec<ManifestFile>,
    /// Files whose content is unchanged.
    pub unchanged: usize,
}

impl ReleaseDelta {
    /// Partitions leaving (removed, and the previous version of replaced files).
    pub fn leaving(&self) -> impl Iterator<Item = &ManifestFile> {
        self.removed.iter().chain(self.replaced.iter().map(|(old, _)| old))
    }

    /// Partitions entering (added, and the new version of replaced files).
    pub fn entering(&self) -> impl Iterator<Item = &ManifestFile> {
        self.added.iter().chain(self.replaced.iter().map(|(_, new)| new))
    }
}

/// A fast 128-bit content checksum: four independent multiply–rotate lanes over 32-byte
/// blocks (so the CPU runs them side by side), folded with the length. Not cryptographic:
/// it tells releases' files apart.
pub fn checksum_file(path: &Path) -> Result<String> {
    const K: [u64; 4] = [0xff51_afd7_ed55_8ccd, 0xc4ce_b9fe_1a85_ec53, 0x9e37_79b9_7f4a_7c15, 0xd6e8_feb8_6659_fd93];
    let io = |source| CatalogError::Io { path: path.to_path_buf(), source };
    let mut file = fs::File::open(path).map_err(io)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut lanes = [0x243f_6a88_85a3_08d3u64, 0x1319_8a2e_0370_7344, 0xa409_3822_299f_31d0, 0x082e_fa98_ec4e_6c89];
    let (mut len, mut filled) = (0u64, 0usize);
    loop {
        let n = file.read(&mut buf[filled..]).map_err(io)?;
        len += n as u64;
        filled += n;
        let whole = if n == 0 { filled } else { filled / 32 * 32 };
        let mut blocks = buf[..whole].chunks_exact(32);
        for block in &mut blocks {
            for (lane, (word, k)) in lanes.iter_mut().zip(block.chunks_exact(8).zip(K)) {
                let w = u64::from_le_bytes(word.try_into().expect("8 bytes"));
                *lane = (*lane ^ w).wrapping_mul(k).rotate_left(31);
            }
        }
        let rest = blocks.remainder().len();
        if n == 0 {
            // The tail (under 32 bytes), zero-padded.
            let mut tail = [0u8; 32];
            tail[..rest].copy_from_slice(blocks.remainder());
            for (lane, (word, k)) in lanes.iter_mut().zip(tail.chunks_exact(8).zip(K)) {
                *lane = (*lane ^ u64::from_le_bytes(word.try_into().expect("8 bytes"))).wrapping_mul(k);
            }
            break;
        }
        buf.copy_within(whole..filled, 0);
        filled -= whole;
    }
    let mix = |x: u64, k: u64| (x ^ (x >> 29)).wrapping_mul(k) ^ len;
    let a = mix(lanes[0] ^ lanes[2].rotate_left(17), K[2]);
    let b = mix(lanes[1] ^ lanes[3].rotate_left(43), K[3]);
    Ok(format!("{:016x}{:016x}", a ^ (a >> 31), b ^ (b >> 31)))
}

fn fingerprint(text: &str) -> String {
    let h = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3));
    format!("{h:016x}")
}

/// Opens the files at `root` as release `release` of `name` (validating every footer and the
/// schema against `previous`'s), and works out the delta to `previous`.
pub fn scan_release(
    name: &str,
    root: &str,
    label: &str,
    previous: Option<(&Manifest, &ParquetCatalog)>,
) -> Result<(Manifest, ReleaseDelta, ParquetCatalog)> {
    scan_release_with(name, root, label, previous, &|job| job())
}

/// [`scan_release`], reading the footers of a release's few new files on `spare` (a thread
/// kept for such jobs) while the other files are looked at.
pub fn scan_release_with(
    name: &str,
    root: &str,
    label: &str,
    previous: Option<(&Manifest, &ParquetCatalog)>,
    spare: &dyn Fn(Job),
) -> Result<(Manifest, ReleaseDelta, ParquetCatalog)> {
    let span = tracing::debug_span!("resolve_paths").entered();
    let listing = crate::parquet::resolve_listing(root)?;
    drop(span);
    let span = tracing::debug_span!("stats").entered();
    let base = PathBuf::from(root);
    let base_dir = if base.is_dir() { base.clone() } else { base.parent().map(Path::to_path_buf).unwrap_or_default() };
    // Checksums (and footers) are reused for the same file (device, inode: also through a
    // hard link in a new folder) or the same path in the same folder, with unchanged size and
    // modification time; only the other files are read.
    let previous_manifest = previous.map(|(m, _)| m);
    let same_root = previous_manifest.is_some_and(|m| Path::new(&m.root) == base_dir);
    let stat_by_path: HashMap<(&str, u64, u64), usize> = previous_manifest
        .filter(|_| same_root)
        .map(|m| m.files.iter().enumerate().map(|(i, f)| ((f.path.as_str(), f.size, f.mtime_ns), i)).collect())
        .unwrap_or_default();
    let by_inode: HashMap<((u64, u64), u64, u64), usize> = previous_manifest
        .map(|m| {
            m.files
                .iter()
                .enumerate()
                .filter(|(_, f)| f.file_id != (0, 0))
                .map(|(i, f)| ((f.file_id, f.size, f.mtime_ns), i))
                .collect()
        })
        .unwrap_or_default();
    struct Stat {
        relative: String,
        size: u64,
        mtime_ns: u64,
        file_id: (u64, u64),
        cached: Option<usize>,
    }
    let mut stats = Vec::with_capacity(listing.len());
    let mut prefetch = previous.is_some().then(|| Prefetch::new(spare, KEPT_FOOTERS));
    // Files whose inode the folder lists and the previous release does not know are most
    // likely new content: their footers are read at once, while the others are looked at
    // (a guess only: what the stats below find decides, and a footer read for nothing is
    // left out).
    if let (Some(prefetch), Some(m)) = (prefetch.as_mut(), previous_manifest) {
        let known: std::collections::HashSet<u64> = m.files.iter().map(|f| f.file_id.1).collect();
        let new: Vec<&PathBuf> =
            listing.iter().filter(|(_, ino)| *ino != 0 && !known.contains(ino)).map(|(p, _)| p).collect();
        if new.len() <= prefetch.room() {
            new.into_iter().for_each(|p| prefetch.push(p));
        }
    }
    let paths: Vec<PathBuf> = listing.into_iter().map(|(path, _)| path).collect();
    for path in &paths {
        let relative = path.strip_prefix(&base_dir).unwrap_or(path).to_string_lossy().into_owned();
        let meta = fs::metadata(path).map_err(|source| CatalogError::Io { path: path.clone(), source })?;
        let mtime_ns =
            meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos() as u64);
        let file_id = {
            use std::os::unix::fs::MetadataExt;
            (meta.dev(), meta.ino())
        };
        let cached = by_inode
            .get(&(file_id, meta.len(), mtime_ns))
            .or_else(|| stat_by_path.get(&(relative.as_str(), meta.len(), mtime_ns)))
            .copied();
        if let Some(prefetch) = prefetch.as_mut().filter(|_| cached.is_none()) {
            prefetch.push(path);
        }
        stats.push(Stat { relative, size: meta.len(), mtime_ns, file_id, cached });
    }
    drop(span);
    let span = tracing::debug_span!("open_reusing").entered();
    let cached: Vec<Option<usize>> = stats.iter().map(|s| s.cached).collect();
    let catalog = open_reusing(name, &paths, &cached, prefetch, previous)?;
    drop(span);
    let _span = tracing::debug_span!("delta").entered();
    if let Some((_, before)) = previous {
        check_schema(before, &catalog, root)?;
    }
    let mut next_partition = previous_manifest.map_or(1, |m| m.next_partition);
    let mut files = Vec::with_capacity(catalog.files.len());
    let mut cached = Vec::with_capacity(stats.len());
    let mut fingerprints: HashMap<*const Option<usize>, String> = HashMap::new();
    for (file, stat) in catalog.files.iter().zip(stats) {
        let checksum = match (stat.cached, previous_manifest) {
            (Some(i), Some(m)) => m.files[i].checksum.clone(),
            _ => String::new(),
        };
        // Files with the same layout share one column map, and so one fingerprint.
        let schema = fingerprints
            .entry(Arc::as_ptr(&file.columns) as *const Option<usize>)
            .or_insert_with(|| {
                let text: Vec<String> = file
                    .columns
                    .iter()
                    .zip(catalog.schema.fields())
                    .filter(|(c, _)| c.is_some())
                    .map(|(_, f)| format!("{}:{}", f.name(), f.data_type()))
                    .collect();
                fingerprint(&text.join(","))
            })
            .clone();
        cached.push(stat.cached);
        files.push(ManifestFile {
            path: stat.relative,
            size: stat.size,
            mtime_ns: stat.mtime_ns,
            file_id: stat.file_id,
            rows: file.num_rows,
            schema,
            checksum,
            partition: 0,
        });
    }
    let mut delta = ReleaseDelta::default();
    let previous_files = previous_manifest.map(|m| m.files.as_slice()).unwrap_or_default();
    let mut matched: std::collections::HashSet<u64> = Default::default();
    // 1. The same files.
    for (f, c) in files.iter_mut().zip(&cached) {
        // (Two new names for one previous file: the second is new content to the views.)
        if let Some(i) = c
            && !matched.contains(&previous_files[*i].partition)
        {
            f.partition = previous_files[*i].partition;
            matched.insert(f.partition);
            delta.unchanged += 1;
        }
    }
    // 2. The same content elsewhere (a copy, a rename). Only files of equal size can hold the
    // same bytes: the new files still unmatched of a size that a previous unmatched file has
    // are hashed, and so are such previous files whose checksum was never needed, if they
    // are still there as they were. Other checksums are left to the release that needs them
    // (a first release reads no contents; a file replaced in place by one of another size
    // is read only by the views).
    let unmatched_previous: Vec<&ManifestFile> =
        previous_files.iter().filter(|f| !matched.contains(&f.partition)).collect();
    let previous_sizes: std::collections::HashSet<u64> = unmatched_previous.iter().map(|f| f.size).collect();
    let new_sizes: std::collections::HashSet<u64> = files.iter().filter(|f| f.partition == 0).map(|f| f.size).collect();
    let to_hash: Vec<(usize, &Path)> = files
        .iter()
        .enumerate()
        .zip(&catalog.files)
        .filter(|((_, f), _)| f.partition == 0 && f.checksum.is_empty() && previous_sizes.contains(&f.size))
        .map(|((i, _), c)| (i, c.path.as_path()))
        .collect();
    let mut sums = checksums(&to_hash.iter().map(|(_, p)| *p).collect::<Vec<_>>())?;
    for (i, path) in &to_hash {
        files[*i].checksum = sums.remove(path).unwrap_or_default();
    }
    let unknown: Vec<PathBuf> = previous_manifest
        .map(|m| {
            unmatched_previous
                .iter()
                .filter(|f| f.checksum.is_empty() && new_sizes.contains(&f.size))
                .filter(|f| {
                    let p = m.file_path(f);
                    fs::metadata(&p).is_ok_and(|meta| {
                        let mtime = meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok());
                        meta.len() == f.size && mtime.map_or(0, |d| d.as_nanos() as u64) == f.mtime_ns
                    })
                })
                .map(|f| m.file_path(f))
                .collect()
        })
        .unwrap_or_default();
    let old_sums = checksums(&unknown.iter().map(PathBuf::as_path).collect::<Vec<_>>())?;
    let mut by_checksum: HashMap<String, Vec<&ManifestFile>> = HashMap::new();
    for f in previous_files.iter().filter(|f| !matched.contains(&f.partition)) {
        let sum = previous_manifest
            .and_then(|m| old_sums.get(m.file_path(f).as_path()))
            .cloned()
            .unwrap_or_else(|| f.checksum.clone());
        if !sum.is_empty() {
            by_checksum.entry(sum).or_default().push(f);
        }
    }
    let by_path: HashMap<&str, &ManifestFile> = previous_files.iter().map(|f| (f.path.as_str(), f)).collect();
    let mut fresh = Vec::new();
    for f in files.iter_mut().filter(|f| f.partition == 0) {
        if let Some(old) =
            by_checksum.get_mut(f.checksum.as_str()).and_then(Vec::pop).filter(|_| !f.checksum.is_empty())
        {
            f.partition = old.partition;
            matched.insert(old.partition);
            delta.unchanged += 1;
        } else {
            f.partition = next_partition;
            next_partition += 1;
            fresh.push(f.clone());
        }
    }
    // 3. New content under a previous path replaces it; the rest is added.
    for f in fresh {
        match by_path.get(f.path.as_str()).filter(|old| !matched.contains(&old.partition)) {
            Some(old) => {
                matched.insert(old.partition);
                delta.replaced.push(((*old).clone(), f));
            }
            None => delta.added.push(f),
        }
    }
    delta.removed = previous_files.iter().filter(|f| !matched.contains(&f.partition)).cloned().collect();
    let manifest = Manifest {
        catalog: name.to_string(),
        release: previous_manifest.map_or(1, |m| m.release + 1),
        label: label.to_string(),
        root: base_dir.to_string_lossy().into_owned(),
        created_unix: std::time::SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        files,
        next_partition,
    };
    Ok((manifest, delta, catalog))
}

/// Checksums of `paths`, computed on as many threads as there are cores.
fn checksums<'p>(paths: &[&'p Path]) -> Result<HashMap<&'p Path, String>> {
    let threads = crate::cores().min(paths.len().max(1));
    let mut sums = HashMap::new();
    std::thread::scope(|scope| -> Result<()> {
        let handles: Vec<_> = paths
            .chunks(paths.len().div_ceil(threads).max(1))
            .map(|chunk| {
                scope.spawn(move || chunk.iter().map(|p| Ok((*p, checksum_file(p)?))).collect::<Result<Vec<_>>>())
            })
            .collect();
        for h in handles {
            sums.extend(h.join().expect("checksum thread")?);
        }
        Ok(())
    })?;
    Ok(sums)
}

/// Opens the catalog of `paths`, reading footers only of files not `cached` (an index into
/// the previous release's files; `prefetch`: the footers of those files being read ahead,
/// kept by the catalog): when the new files agree with the previous schema, the previous
/// entries are reused; otherwise every footer is read again.
fn open_reusing(
    name: &str,
    paths: &[PathBuf],
    cached: &[Option<usize>],
    prefetch: Option<Prefetch>,
    previous: Option<(&Manifest, &ParquetCatalog)>,
) -> Result<ParquetCatalog> {
    let fresh: Vec<PathBuf> = paths.iter().zip(cached).filter(|(_, c)| c.is_none()).map(|(p, _)| p.clone()).collect();
    let prefetched = prefetch.and_then(|p| p.finish(name, &fresh));
    let Some((_, before)) = previous.filter(|_| cached.iter().any(Option::is_some)) else {
        // Nothing reused: every file is fresh, and read ahead already if there were few.
        return prefetched.unwrap_or_else(|| ParquetCatalog::open_files(name, paths));
    };
    // A release's few new files keep their footers for the views' contribution query.
    let opened = match prefetched {
        _ if fresh.is_empty() => None,
        Some(opened) => Some(opened?),
        None => Some(ParquetCatalog::open_files(name, &fresh)?),
    };
    if opened.as_ref().is_some_and(|o| o.schema.fields() != before.schema.fields()) {
        return ParquetCatalog::open_files(name, paths);
    }
    let mut fresh_files = opened.map(|o| o.files).unwrap_or_default().into_iter();
    let files = paths
        .iter()
        .zip(cached)
        .map(|(path, c)| match c {
            Some(i) => {
                let mut f = before.files[*i].clone();
                f.path = path.clone();
                f
            }
            None => fresh_files.next().expect("one opened file per fresh path"),
        })
        .collect();
    Ok(ParquetCatalog { name: name.to_string(), files, schema: before.schema.clone(), file_column: false, hats: None })
}

/// Every column of the previous release must still be there with the same type.
fn check_schema(before: &ParquetCatalog, after: &ParquetCatalog, root: &str) -> Result<()> {
    for field in before.schema.fields() {
        match after.schema.field_with_name(field.name()) {
            Err(_) => {
                return Err(CatalogError::Release(format!(
                    "the new release at {root} has no column \"{}\" (the current release has it)",
                    field.name()
                )));
            }
            Ok(f) if f.data_type() != field.data_type() => {
                return Err(CatalogError::Release(format!(
                    "column \"{}\" is {} in the new release at {root} but {} in the current one",
                    field.name(),
                    f.data_type(),
                    field.data_type()
                )));
            }
            Ok(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dp02::{Dp02Options, generate_dp02};

    #[test]
    fn checksums_follow_content() {
        let dir = std::env::temp_dir().join(format!("starflow-checksum-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let (a, b, c) = (dir.join("a"), dir.join("b"), dir.join("c"));
        fs::write(&a, b"hello world, twenty-seven b").unwrap();
        fs::write(&b, b"hello world, twenty-seven b").unwrap();
        fs::write(&c, b"hello world, twenty-seven c").unwrap();
        assert_eq!(checksum_file(&a).unwrap(), checksum_file(&b).unwrap());
        assert_ne!(checksum_file(&a).unwrap(), checksum_file(&c).unwrap());
        // Across read-buffer boundaries, with a tail: the last byte still counts.
        let big: Vec<u8> = (0..(3 << 20) + 5).map(|i| (i * 7 % 251) as u8).collect();
        let (d, e) = (dir.join("d"), dir.join("e"));
        fs::write(&d, &big).unwrap();
        let mut changed = big.clone();
        *changed.last_mut().unwrap() ^= 1;
        fs::write(&e, &changed).unwrap();
        assert_ne!(checksum_file(&d).unwrap(), checksum_file(&e).unwrap());
        fs::write(&e, &big[..big.len() - 1]).unwrap();
        assert_ne!(checksum_file(&d).unwrap(), checksum_file(&e).unwrap(), "length matters");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn deltas_tell_added_replaced_removed_and_moved_files_apart() {
        let dir = std::env::temp_dir().join(format!("starflow-release-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let opts = Dp02Options { files: 4, rows: 4_000, seed: 3, row_group_rows: 500 };
        generate_dp02(&dir.join("r1"), &opts).unwrap();
        let r1 = dir.join("r1").to_string_lossy().into_owned();
        let (m1, d1, c1) = scan_release("cat", &r1, "one", None).unwrap();
        assert_eq!((d1.added.len(), d1.unchanged, m1.release), (4, 0, 1));
        // Release 2: a copy with one file rewritten (other seed), one renamed, one removed.
        let r2 = dir.join("r2");
        fs::create_dir_all(&r2).unwrap();
        let names: Vec<String> = m1.files.iter().map(|f| f.path.clone()).collect();
        fs::copy(dir.join("r1").join(&names[0]), r2.join(&names[0])).unwrap();
        fs::copy(dir.join("r1").join(&names[1]), r2.join("renamed.parquet")).unwrap();
        let other = dir.join("other");
        generate_dp02(&other, &Dp02Options { seed: 99, ..opts }).unwrap();
        fs::copy(other.join(&names[2]), r2.join(&names[2])).unwrap();
        let previous = (m1.clone(), c1);
        let (m2, d2, _) = scan_release("cat", &r2.to_string_lossy(), "two", Some((&previous.0, &previous.1))).unwrap();
        assert_eq!(m2.release, 2);
        assert_eq!(d2.unchanged, 2, "a copy and a renamed copy are unchanged content");
        assert_eq!(d2.replaced.len(), 1);
        assert_eq!(d2.replaced[0].0.path, names[2]);
        assert_ne!(d2.replaced[0].0.partition, d2.replaced[0].1.partition);
        assert_eq!(d2.removed.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(), [names[3].as_str()]);
        assert!(d2.added.is_empty());
        let renamed = m2.files.iter().find(|f| f.path == "renamed.parquet").unwrap();
        assert_eq!(renamed.partition, m1.files[1].partition, "unchanged content keeps its partition id");
        // A rewritten file of another size cannot be a copy of anything: not read to decide.
        let (old, new) = &d2.replaced[0];
        if !m1.files.iter().any(|f| f.size == new.size) {
            assert!(new.checksum.is_empty(), "{} was hashed for nothing", new.path);
        }
        assert!(!old.path.is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }
}
