//! Admitting workers: each connection's hello checked (version, token, shard), its welcome
//! (shard, plan, target) sent, its ready awaited; then the clock exchange.
//!
//! Receives accepted control connections and what every welcome carries. Emits an
//! [`Admitted`] worker per connection that passed, or why one was refused (said to the
//! worker, and returned).
//! Must not: admit two workers for one shard, or wait on a silent connection without bound.

use std::time::Duration;

use tokio::io::BufReader;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use super::wire::{self, ToCoordinator, ToWorker};
use crate::share::Shard;

/// Time a new connection has to say hello, and a welcomed worker to get ready.
pub const HELLO_WITHIN: Duration = Duration::from_secs(10);
pub const READY_WITHIN: Duration = Duration::from_secs(60);

/// What every worker is told, apart from its shard.
#[derive(Debug, Clone)]
pub struct Offer {
    pub count: u32,
    pub token: String,
    pub argv: Vec<String>,
    pub plan_text: Option<String>,
    /// The targets' URLs (unredacted: workers connect to them); worker `i` gets
    /// `urls[i % urls.len()]`.
    pub urls: Vec<String>,
    pub run_id: u32,
    pub seed: u64,
    /// A steered run: its phases placed at the start (wire.rs `Welcome`).
    pub steered: Option<u16>,
}

/// A worker that said hello, got its shard and is ready.
#[derive(Debug)]
pub struct Admitted {
    pub index: u32,
    pub host: String,
    pub pid: u32,
    pub read: BufReader<OwnedReadHalf>,
    pub write: OwnedWriteHalf,
}

/// Why a connection was not admitted.
#[derive(Debug)]
pub enum Refusal {
    /// Not a worker of this run (bad token, version, shard): it was told, the run goes on.
    Refused(String),
    /// A worker of this run that cannot run the plan: the run cannot go on.
    Failed { index: u32, why: String },
}

/// Runs admission on one connection. `claim` takes the shard the worker asks for (or the
/// next free one) and returns it, or `None` when it is taken or out of range.
pub async fn admit(
    stream: TcpStream,
    offer: &Offer,
    claim: impl FnOnce(Option<u32>) -> Option<u32>,
) -> Result<Admitted, Refusal> {
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let hello = tokio::time::timeout(HELLO_WITHIN, wire::read::<ToCoordinator, _>(&mut read))
        .await
        .map_err(|_| Refusal::Refused("no hello within 10 s".into()))?
        .map_err(|e| Refusal::Refused(format!("bad hello: {e}")))?;
    let ToCoordinator::Hello {
        version,
        token,
        index,
        host,
        pid,
        ..
    } = hello
    else {
        return Err(refuse(&mut write, "the first message must be a hello".into()).await);
    };
    if version != wire::VERSION {
        let why = format!(
            "protocol version {version}, this coordinator speaks {}: run the same swarm version",
            wire::VERSION
        );
        return Err(refuse(&mut write, why).await);
    }
    if !wire::token_matches(&token, &offer.token) {
        return Err(refuse(&mut write, "wrong token".into()).await);
    }
    let Some(index) = claim(index) else {
        let why = match index {
            Some(i) if i >= offer.count => {
                format!(
                    "shard {i} does not exist: this run has {} shards",
                    offer.count
                )
            }
            Some(i) => format!("shard {i} is already taken"),
            None => "every shard is taken".into(),
        };
        return Err(refuse(&mut write, why).await);
    };
    let welcome = ToWorker::Welcome {
        shard: Shard {
            index,
            count: offer.count,
        },
        argv: offer.argv.clone(),
        plan_text: offer.plan_text.clone(),
        url: offer
            .urls
            .get(index as usize % offer.urls.len().max(1))
            .cloned()
            .unwrap_or_default(),
        run_id: offer.run_id,
        seed: offer.seed,
        steered: offer.steered,
    };
    let failed = |why: String| Refusal::Failed { index, why };
    wire::write(&mut write, &welcome)
        .await
        .map_err(|e| failed(format!("welcome not delivered: {e}")))?;
    match tokio::time::timeout(READY_WITHIN, wire::read::<ToCoordinator, _>(&mut read)).await {
        Ok(Ok(ToCoordinator::Ready)) => Ok(Admitted {
            index,
            host: host.chars().take(255).collect(),
            pid,
            read,
            write,
        }),
        Ok(Ok(ToCoordinator::Failed { why })) => Err(failed(why)),
        Ok(Ok(other)) => Err(failed(format!("expected ready, got {other:?}"))),
        Ok(Err(e)) => Err(failed(format!("lost before ready: {e}"))),
        Err(_) => Err(failed("not ready within 60 s".into())),
    }
}

async fn refuse(write: &mut OwnedWriteHalf, why: String) -> Refusal {
    let _ = wire::write(write, &ToWorker::Refused { why: why.clone() }).await;
    Refusal::Refused(why)
}

/// One clock estimate: the worker's clock minus the coordinator's, and its error bound.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClockOffset {
    pub offset_ns: i64,
    pub bound_ns: u64,
}

impl ClockOffset {
    /// From one exchange: sent at `t0`, the worker's `t1`, received at `t2` (coordinator ns).
    pub fn from_exchange(t0: u64, t1: u64, t2: u64) -> ClockOffset {
        let rtt = t2.saturating_sub(t0);
        let mid = t0 as i128 + i128::from(rtt / 2);
        ClockOffset {
            offset_ns: (t1 as i128 - mid).clamp(i64::MIN as i128, i64::MAX as i128) as i64,
            bound_ns: rtt.div_ceil(2),
        }
    }

    /// The better (tighter) of two estimates.
    pub fn best(self, other: ClockOffset) -> ClockOffset {
        if other.bound_ns < self.bound_ns {
            other
        } else {
            self
        }
    }
}

/// Exchanges `rounds` pings with a worker that is waiting for its start; the tightest
/// estimate wins.
pub async fn measure_clock(w: &mut Admitted, rounds: u32) -> Result<ClockOffset, String> {
    let mut best: Option<ClockOffset> = None;
    for id in 0..rounds {
        let t0 = wire::unix_ns();
        wire::write(
            &mut w.write,
            &ToWorker::Ping {
                id,
                coordinator_ns: t0,
            },
        )
        .await
        .map_err(|e| e.to_string())?;
        let reply = tokio::time::timeout(HELLO_WITHIN, wire::read::<ToCoordinator, _>(&mut w.read))
            .await
            .map_err(|_| "no answer to a clock ping within 10 s".to_string())?
            .map_err(|e| e.to_string())?;
        let t2 = wire::unix_ns();
        if let ToCoordinator::Pong { id: got, worker_ns } = reply
            && got == id
        {
            let e = ClockOffset::from_exchange(t0, worker_ns, t2);
            best = Some(best.map_or(e, |b| b.best(e)));
        }
    }
    best.ok_or_else(|| "no valid answer to the clock pings".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A worker 5 ms ahead, 2 ms each way: offset 5 ms, bound 2 ms.
    #[test]
    fn clock_offset_from_one_exchange() {
        let t0 = 1_000_000_000;
        let e = ClockOffset::from_exchange(t0, t0 + 2_000_000 + 5_000_000, t0 + 4_000_000);
        assert_eq!(e.offset_ns, 5_000_000);
        assert_eq!(e.bound_ns, 2_000_000);
        let behind = ClockOffset::from_exchange(t0, t0 - 1_000_000, t0 + 2_000_000);
        assert_eq!(behind.offset_ns, -2_000_000);
        assert_eq!(e.best(behind), behind);
    }

    #[test]
    fn tokens_compare_exactly() {
        assert!(wire::token_matches("abc", "abc"));
        assert!(!wire::token_matches("abd", "abc"));
        assert!(!wire::token_matches("ab", "abc"));
        assert!(!wire::token_matches("abcd", "abc"));
        assert!(!wire::token_matches("", "abc"));
    }
}
