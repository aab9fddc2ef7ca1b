//! Applying [`super::rules`] scripts with `nft`, and the few sysctls the rules depend on.
//!
//! The scripts go through `nft -f -`, which applies a whole script as one netfilter
//! transaction: a project's chains are replaced atomically or not at all, and nothing
//! outside wharf's own `inet wharf` table is named in them, so nothing else is touched.
//! (The `nftables` crate would build the same transaction as JSON; the text form is what
//! `nft list ruleset` shows the user and what the snapshot tests pin, so we keep one form.)
//!
//! Sysctls are per network namespace: they are written through `/proc/sys/net`, which
//! shows the namespace of the writing thread. This module never reads or writes any other
//! table, chain or sysctl.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// A failure to apply rules or set a sysctl.
#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    #[error("running nft: {0} (is the nftables package installed?)")]
    Spawn(std::io::Error),
    #[error("nft refused the rules of project {project:?}: {stderr}")]
    Refused { project: String, stderr: String },
    #[error("setting {path}: {source}", path = path.display())]
    Sysctl {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Applies `script` (from [`super::rules::project_ruleset`] or `delete_project`) for
/// `project` in one transaction.
pub fn apply(project: &str, script: &str) -> Result<(), FirewallError> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(FirewallError::Spawn)?;
    if let Some(mut stdin) = child.stdin.take() {
        // A write error shows up as nft's failure below.
        let _ = stdin.write_all(script.as_bytes());
    }
    let out = child.wait_with_output().map_err(FirewallError::Spawn)?;
    if out.status.success() {
        return Ok(());
    }
    Err(FirewallError::Refused {
        project: project.to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    })
}

/// Whether `table inet wharf` exists in the caller's network namespace, and how many
/// chains it holds (for leak checks and `down`, which removes an empty table).
pub fn table_chains() -> Result<Option<usize>, FirewallError> {
    let out = Command::new("nft")
        .args(["list", "table", "inet", super::rules::TABLE])
        .stdin(Stdio::null())
        .output()
        .map_err(FirewallError::Spawn)?;
    if !out.status.success() {
        return Ok(None);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(Some(
        text.lines()
            .filter(|l| l.trim_start().starts_with("chain "))
            .count(),
    ))
}

/// Removes wharf's table when no project has chains in it any more. Another wharf
/// process adding chains at the same moment holds the host-wide network lock, as we do.
pub fn remove_table_if_empty() -> Result<(), FirewallError> {
    if table_chains()? == Some(0) {
        apply(
            "",
            &format!(
                "table inet {t} {{}}\ndelete table inet {t}\n",
                t = super::rules::TABLE
            ),
        )?;
    }
    Ok(())
}

fn write_sysctl(path: &str, value: &str) -> Result<(), FirewallError> {
    let path = PathBuf::from(path);
    // Reading first spares a write (and the netns-wide side effects some keys have, such
    // as IPv6 `forwarding` resetting router settings) when the value is already right.
    if std::fs::read_to_string(&path).is_ok_and(|v| v.trim() == value) {
        return Ok(());
    }
    std::fs::write(&path, value).map_err(|source| FirewallError::Sysctl { path, source })
}

/// Routing between bridges and out of the host, as Docker does: `ip_forward` (and IPv6
/// forwarding when a network has IPv6). Like Docker, wharf leaves it on after `down`;
/// other software on the host may rely on it by then.
pub fn enable_forwarding(ipv6: bool) -> Result<(), FirewallError> {
    write_sysctl("/proc/sys/net/ipv4/ip_forward", "1")?;
    if ipv6 {
        write_sysctl("/proc/sys/net/ipv6/conf/all/forwarding", "1")?;
    }
    Ok(())
}

/// Per bridge: `route_localnet`, so that a connection the host makes to
/// `127.0.0.1:<published>` may leave through the bridge after the `output` DNAT (the kernel
/// otherwise drops a 127/8 source on a non-loopback interface as martian; the `post_`
/// chain then masquerades it). This is how published ports answer on localhost without a
/// userland proxy process per port, which a daemonless tool could not keep running.
pub fn prepare_bridge(bridge: &str, ipv6: bool) -> Result<(), FirewallError> {
    write_sysctl(
        &format!("/proc/sys/net/ipv4/conf/{bridge}/route_localnet"),
        "1",
    )?;
    if ipv6 {
        write_sysctl(
            &format!("/proc/sys/net/ipv6/conf/{bridge}/disable_ipv6"),
            "0",
        )?;
    }
    Ok(())
}
