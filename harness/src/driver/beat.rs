//! One connection's view of the server heartbeat: ping arrivals, muting, the client-side
//! deadline, client WS pings, and what a server close means.
//!
//! Receives: the instants of pings, of muting, of client pings and their pongs, and the
//! server's close with its reason. Emits the heartbeat [`Event`]s (Ping with its
//! interval, PongRtt, MutedClosed, FalseTimeout) and the instant of the next deadline.
//! Must not: decide anything from a server's internal reason (none crosses the wire): a
//! ping timeout is inferred from timing (docs/ARCHITECTURE.md#disconnect-reasons).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::sample::{DisconnectReason, Event};

/// Client pings awaiting their pong, at most.
const MAX_PINGS: usize = 16;

/// Heartbeat state of one connection.
#[derive(Debug)]
pub struct Beat {
    /// (pingInterval, pingTimeout) advertised, or expected for raw WS.
    pub advertised: Option<(Duration, Duration)>,
    connected_at: Instant,
    last_ping: Option<Instant>,
    /// The last ping this client answered.
    last_answered: Option<Instant>,
    muted_at: Option<Instant>,
    /// Client WS pings: (id, sent).
    pings: VecDeque<(u64, Instant)>,
    next_ping_id: u64,
}

/// What a server close of this connection was.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The client was muted: expected.
    Muted(Event),
    /// A healthy client closed like a ping timeout.
    FalseTimeout,
    /// Anything else.
    Other,
}

impl Beat {
    pub fn new(advertised: Option<(Duration, Duration)>, connected_at: Instant) -> Beat {
        Beat {
            advertised,
            connected_at,
            last_ping: None,
            last_answered: None,
            muted_at: None,
            pings: VecDeque::new(),
            next_ping_id: 0,
        }
    }

    pub fn muted(&self) -> bool {
        self.muted_at.is_some()
    }

    /// A server ping arrived at `now`; `answered`: the client answers it (not muted).
    pub fn ping(&mut self, now: Instant, answered: bool) -> Event {
        let interval = self.last_ping.map(|p| now.saturating_duration_since(p));
        self.last_ping = Some(now);
        if answered {
            self.last_answered = Some(now);
        }
        Event::Ping {
            interval,
            advertised: self.advertised,
        }
    }

    /// The client stops answering pings at `now`.
    pub fn mute(&mut self, now: Instant) {
        if self.muted_at.is_none() {
            self.muted_at = Some(now);
            // A client that never saw a ping answered none; its connect is the reference.
            if self.last_answered.is_none() {
                self.last_answered = Some(self.connected_at);
            }
        }
    }

    /// When the client gives up on a silent server (pingInterval + pingTimeout after the
    /// last ping, or after the connect); `None` when nothing is known or the client is muted.
    pub fn deadline(&self) -> Option<Instant> {
        if self.muted() {
            return None;
        }
        let (i, t) = self.advertised?;
        Some(self.last_ping.unwrap_or(self.connected_at) + i + t)
    }

    /// Records a client ping sent at `now`; returns its id.
    pub fn client_ping(&mut self, now: Instant) -> u64 {
        let id = self.next_ping_id;
        self.next_ping_id += 1;
        if self.pings.len() == MAX_PINGS {
            self.pings.pop_front();
        }
        self.pings.push_back((id, now));
        id
    }

    /// The pong of client ping `id` arrived at `now`.
    pub fn pong(&mut self, id: u64, now: Instant) -> Option<Event> {
        let i = self.pings.iter().position(|(p, _)| *p == id)?;
        let (_, sent) = self.pings.remove(i)?;
        Some(Event::PongRtt {
            rtt: now.saturating_duration_since(sent),
        })
    }

    /// The server closed the connection at `now` with `reason`.
    pub fn server_closed(&self, now: Instant, reason: &DisconnectReason) -> Verdict {
        if let Some(muted_at) = self.muted_at {
            return Verdict::Muted(Event::MutedClosed {
                after_mute: now.saturating_duration_since(muted_at),
                after_last_pong: self.last_answered.map(|a| now.saturating_duration_since(a)),
            });
        }
        let goodbye = matches!(
            reason,
            DisconnectReason::EioClose
                | DisconnectReason::SioDisconnect
                | DisconnectReason::WsClose { code: 1001 }
                | DisconnectReason::ClientClose
                | DisconnectReason::ClientDrop
                | DisconnectReason::ClientDeadline
        );
        let (Some((interval, timeout)), false) = (self.advertised, goodbye) else {
            return Verdict::Other;
        };
        let since = now.saturating_duration_since(self.last_ping.unwrap_or(self.connected_at));
        let slack = Duration::from_millis(100).max(interval / 5);
        if since >= timeout / 2 && since <= timeout + slack {
            Verdict::FalseTimeout
        } else {
            Verdict::Other
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn intervals_deadline_and_muted_close() {
        let t0 = Instant::now();
        let mut b = Beat::new(Some((1000 * MS, 500 * MS)), t0);
        assert_eq!(b.deadline(), Some(t0 + 1500 * MS));
        assert_eq!(
            b.ping(t0 + 1000 * MS, true),
            Event::Ping {
                interval: None,
                advertised: Some((1000 * MS, 500 * MS))
            }
        );
        let Event::Ping { interval, .. } = b.ping(t0 + 2010 * MS, true) else {
            panic!()
        };
        assert_eq!(interval, Some(1010 * MS));
        assert_eq!(b.deadline(), Some(t0 + 3510 * MS));
        b.mute(t0 + 2500 * MS);
        assert_eq!(b.deadline(), None);
        b.ping(t0 + 3010 * MS, false);
        let v = b.server_closed(t0 + 3515 * MS, &DisconnectReason::WsClose { code: 1005 });
        assert_eq!(
            v,
            Verdict::Muted(Event::MutedClosed {
                after_mute: 1015 * MS,
                after_last_pong: Some(1505 * MS)
            })
        );
    }

    #[test]
    fn false_timeout_signature() {
        let t0 = Instant::now();
        let mut b = Beat::new(Some((1000 * MS, 500 * MS)), t0);
        b.ping(t0 + 1000 * MS, true);
        let eof = DisconnectReason::Eof;
        assert_eq!(b.server_closed(t0 + 1500 * MS, &eof), Verdict::FalseTimeout);
        assert_eq!(b.server_closed(t0 + 1100 * MS, &eof), Verdict::Other);
        assert_eq!(
            b.server_closed(t0 + 1500 * MS, &DisconnectReason::EioClose),
            Verdict::Other
        );
        let mut b = Beat::new(None, t0);
        let id = b.client_ping(t0);
        assert_eq!(
            b.pong(id, t0 + 3 * MS),
            Some(Event::PongRtt { rtt: 3 * MS })
        );
        assert_eq!(b.pong(id, t0 + 4 * MS), None);
    }
}
