//! The connection file a server writes and clients read (like Dask's scheduler file or
//! Jupyter's kernel file): where the control plane listens and the token it wants. It is
//! created with mode 0600 in a 0700 folder, because the token is the only thing between
//! other users of the cluster and this user's data.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// What a client needs to reach a server.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ConnectionInfo {
    pub host: String,
    pub port: u16,
    pub token: String,
    /// SLURM job id, or `local-<pid>` outside SLURM.
    pub job_id: String,
    pub catalogs: Vec<String>,
    pub pid: u32,
    pub processes: usize,
    pub workers_per_process: usize,
    pub version: String,
}

/// `~/.starflow/<job>.json`.
pub fn default_path(job_id: &str) -> Result<PathBuf> {
    let home = std::env::var_os("HOME").context("HOME is not set; give --connection-file")?;
    Ok(PathBuf::from(home).join(".starflow").join(format!("{job_id}.json")))
}

/// Writes `info` to `path` atomically (temp file, fsync, rename), readable by the owner only.
pub fn write(path: &Path, info: &ConnectionInfo) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot restrict {}", dir.display()))?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot create the connection file {}", tmp.display()))?;
    file.write_all(&serde_json::to_vec_pretty(info)?)?;
    file.sync_all()?;
    fs::rename(&tmp, path).with_context(|| format!("cannot write the connection file {}", path.display()))?;
    Ok(())
}

/// Reads a connection file; refuses one that other users could read.
pub fn read(path: &Path) -> Result<ConnectionInfo> {
    let meta = fs::metadata(path).with_context(|| format!("cannot read the connection file {}", path.display()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        bail!(
            "the connection file {} is readable by other users (mode {:o}); it holds a secret token: chmod 600 it",
            path.display(),
            meta.permissions().mode() & 0o777
        );
    }
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read the connection file {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a starflow connection file", path.display()))
}

/// A fresh random token (256 bits from the kernel's generator), hex-encoded.
pub fn new_token() -> Result<String> {
    let mut bytes = [0u8; 32];
    let mut random = fs::File::open("/dev/urandom").context("cannot open /dev/urandom")?;
    std::io::Read::read_exact(&mut random, &mut bytes).context("cannot read /dev/urandom")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Compares tokens in time independent of where they differ.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_files_are_private_and_read_back() {
        let dir = std::env::temp_dir().join(format!("starflow-conn-{}", std::process::id()));
        let path = dir.join("sub").join("job.json");
        let info = ConnectionInfo {
            host: "node1".into(),
            port: 4242,
            token: new_token().unwrap(),
            job_id: "17".into(),
            catalogs: vec!["dp02".into()],
            pid: 1,
            processes: 2,
            workers_per_process: 4,
            version: "0.1.0".into(),
        };
        write(&path, &info).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(read(&path).unwrap(), info);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(read(&path).unwrap_err().to_string().contains("readable by other users"));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn tokens_are_random_and_compared_exactly() {
        let (a, b) = (new_token().unwrap(), new_token().unwrap());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert!(same_token(&a, &a.clone()));
        assert!(!same_token(&a, &b));
        assert!(!same_token(&a, &a[..63]));
    }
}
