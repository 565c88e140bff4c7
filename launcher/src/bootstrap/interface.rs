//! `--interface ib0`: listen on a given network interface (as Dask's SLURMCluster does).
//! Peers learn each other's interface addresses through a rendezvous folder on the shared
//! file system, one small file per process.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::bootstrap::ClusterSpec;

/// The IPv4 address of interface `name` (from `ip -o -4 addr show dev NAME`).
pub fn interface_address(name: &str) -> Result<String> {
    let out = Command::new("ip")
        .args(["-o", "-4", "addr", "show", "dev", name])
        .output()
        .context("cannot run `ip` to find the interface address")?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_ip_output(&text).with_context(|| {
        format!("interface \"{name}\" has no IPv4 address (ip said: {})", String::from_utf8_lossy(&out.stderr).trim())
    })
}

fn parse_ip_output(text: &str) -> Option<String> {
    // "2: ib0    inet 10.1.2.3/16 brd 10.1.255.255 scope global ib0 ..."
    let mut words = text.split_whitespace();
    words.find(|w| *w == "inet")?;
    words.next()?.split('/').next().map(str::to_string)
}

/// Publishes this process's interface address and replaces every host of `spec` by the
/// address its process published.
pub fn rendezvous(spec: &mut ClusterSpec, interface: &str, env: &HashMap<String, String>) -> Result<()> {
    let own = interface_address(interface)?;
    let job = env.get("SLURM_JOB_ID").map_or("0", String::as_str);
    let step = env.get("SLURM_STEP_ID").map_or("0", String::as_str);
    let base = match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".starflow").join("rendezvous"),
        None => std::env::temp_dir().join("starflow-rendezvous"),
    };
    let dir = base.join(format!("{job}.{step}"));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = dir.join(format!(".{}.tmp", spec.process));
    std::fs::write(&tmp, &own).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, dir.join(spec.process.to_string()))?;
    let deadline = Instant::now() + Duration::from_secs(120);
    for p in 0..spec.processes {
        let file = dir.join(p.to_string());
        loop {
            if let Ok(address) = std::fs::read_to_string(&file) {
                spec.hosts[p] = address.trim().to_string();
                break;
            }
            if Instant::now() > deadline {
                bail!("process {p} ({}) never published its {interface} address in {}", spec.hosts[p], dir.display());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ip_output() {
        let line = "3: ib0    inet 10.1.2.3/16 brd 10.1.255.255 scope global ib0\\       valid_lft forever";
        assert_eq!(parse_ip_output(line).as_deref(), Some("10.1.2.3"));
        assert_eq!(parse_ip_output(""), None);
    }

    #[test]
    fn loopback_has_an_address() {
        if Command::new("ip").arg("-V").output().is_ok() {
            assert_eq!(interface_address("lo").unwrap(), "127.0.0.1");
        }
    }
}
