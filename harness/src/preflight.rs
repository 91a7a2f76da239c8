//! Checks made before any socket opens: the open-file limit.
//!
//! Receives: the plan's peak client count and whether the target is embedded. Emits: the
//! raised soft limit, or a [`PreflightError`] saying how many clients fit and why.
//! Must not: open sockets.

/// Descriptors kept spare for the runtime, the recorder's files, listeners, stdio.
pub const SPARE_FDS: u64 = 64;

/// The run cannot fit in this process.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreflightError {
    #[error(
        "{clients} clients need about {needed} open files ({per_client} per client{why}, plus {spare} spare) \
         but this process may open at most {limit} (hard limit; {open} already open), so at most {fit} \
         clients fit. Use fewer clients, raise the hard limit (`ulimit -Hn`, as root), or split the run \
         over several swarm processes."
    )]
    TooManyClients {
        clients: u32,
        needed: u64,
        per_client: u64,
        why: &'static str,
        spare: u64,
        limit: u64,
        open: u64,
        fit: u64,
    },
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and checks that `clients`
/// connections fit (two descriptors each when the server is embedded in this process).
pub fn check_fds(clients: u32, embedded: bool) -> Result<u64, PreflightError> {
    let limit = target_server::net::raise_fd_limit().unwrap_or(1024);
    let open = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count() as u64)
        .unwrap_or(16);
    fits(clients, embedded, limit, open)
}

fn fits(clients: u32, embedded: bool, limit: u64, open: u64) -> Result<u64, PreflightError> {
    let per_client = if embedded { 2 } else { 1 };
    let needed = u64::from(clients) * per_client + SPARE_FDS + open;
    if needed <= limit {
        return Ok(limit);
    }
    Err(PreflightError::TooManyClients {
        clients,
        needed,
        per_client,
        why: if embedded {
            ": the embedded server holds the other end in this process"
        } else {
            ""
        },
        spare: SPARE_FDS,
        limit,
        open,
        fit: limit.saturating_sub(SPARE_FDS + open) / per_client,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_both_ends_when_embedded() {
        assert!(fits(9_000, true, 20_000, 10).is_ok());
        let err = fits(10_000, true, 20_000, 10).unwrap_err();
        let PreflightError::TooManyClients { fit, .. } = &err;
        assert_eq!(*fit, (20_000 - 74) / 2);
        let msg = err.to_string();
        assert!(msg.contains("at most 9963 clients fit"), "{msg}");
        assert!(msg.contains("embedded"), "{msg}");
        assert!(fits(19_000, false, 20_000, 10).is_ok());
    }
}
