//! The messages one client has sent and not yet settled, in send order.
//!
//! Receives: sends (seq, intended, sent, phase), replies by seq, the clock. Emits: the
//! [`Event`]s to record (Reply, Timeout, Late, Unanswered), never statistics.
//! Must not: allocate per message once warmed up (a ring of 24-byte entries), or keep
//! anything after it can no longer matter (a timed-out entry is forgotten one timeout
//! after its deadline; a reply later than that is `Unmatched`).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::sample::Event;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Pending,
    TimedOut,
    Done,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    intended: Instant,
    /// Actual send, in µs after `intended` (sends never precede their intended instant).
    sent_after_us: u32,
    phase: u16,
    state: State,
}

impl Entry {
    fn sent(&self) -> Instant {
        self.intended + Duration::from_micros(u64::from(self.sent_after_us))
    }
}

/// What a reply turned out to be.
#[derive(Debug, Clone)]
pub enum Settled {
    /// A reply in time, or a late one: record `event` for `phase`.
    Record { phase: u16, event: Event },
    /// Not ours, already answered, or too old to remember.
    Unmatched,
}

/// Outstanding messages of one client; seqs are consecutive from `base`.
#[derive(Debug)]
pub struct InFlight {
    base: u32,
    entries: VecDeque<Entry>,
    pending: u32,
    timeout: Duration,
}

impl InFlight {
    pub fn new(timeout: Duration) -> InFlight {
        InFlight {
            base: 0,
            entries: VecDeque::new(),
            pending: 0,
            timeout,
        }
    }

    /// The seq the next send must carry.
    pub fn next_seq(&self) -> u32 {
        self.base.wrapping_add(self.entries.len() as u32)
    }

    /// Messages sent and neither answered nor timed out.
    pub fn pending(&self) -> u32 {
        self.pending
    }

    /// Records a send of `next_seq()`.
    pub fn sent(&mut self, intended: Instant, sent: Instant, phase: u16) {
        let after = sent
            .saturating_duration_since(intended)
            .as_micros()
            .min(u128::from(u32::MAX)) as u32;
        self.entries.push_back(Entry {
            intended,
            sent_after_us: after,
            phase,
            state: State::Pending,
        });
        self.pending += 1;
    }

    /// A reply for `seq` arrived at `now`.
    pub fn reply(&mut self, seq: u32, now: Instant) -> Settled {
        let idx = seq.wrapping_sub(self.base) as usize;
        let Some(e) = self.entries.get_mut(idx) else {
            return Settled::Unmatched;
        };
        let out = match e.state {
            State::Pending => {
                self.pending -= 1;
                Settled::Record {
                    phase: e.phase,
                    event: Event::Reply {
                        intended: e.intended,
                        sent: e.sent(),
                    },
                }
            }
            State::TimedOut => Settled::Record {
                phase: e.phase,
                event: Event::Late {
                    intended: e.intended,
                    sent: e.sent(),
                },
            },
            State::Done => return Settled::Unmatched,
        };
        e.state = State::Done;
        self.trim(now);
        out
    }

    /// Marks every pending message older than the timeout as timed out; `emit` gets one
    /// `(phase, Timeout)` per message.
    pub fn expire(&mut self, now: Instant, mut emit: impl FnMut(u16, Event)) {
        for e in self.entries.iter_mut() {
            if e.state != State::Pending {
                continue;
            }
            let sent = e.sent();
            if sent + self.timeout > now {
                break;
            }
            e.state = State::TimedOut;
            self.pending -= 1;
            emit(
                e.phase,
                Event::Timeout {
                    intended: e.intended,
                    sent,
                },
            );
        }
        self.trim(now);
    }

    /// When the oldest pending message times out.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.entries
            .iter()
            .find(|e| e.state == State::Pending)
            .map(|e| e.sent() + self.timeout)
    }

    /// The connection is gone: every pending message is a timeout now (its reply can no
    /// longer arrive). Everything is forgotten.
    pub fn fail_all(&mut self, mut emit: impl FnMut(u16, Event)) {
        self.base = self.base.wrapping_add(self.entries.len() as u32);
        for e in self.entries.drain(..) {
            if e.state == State::Pending {
                emit(
                    e.phase,
                    Event::Timeout {
                        intended: e.intended,
                        sent: e.sent(),
                    },
                );
            }
        }
        self.pending = 0;
    }

    /// The run stopped: returns per phase how many were still pending, and forgets all.
    pub fn stop(&mut self) -> Vec<(u16, u32)> {
        self.base = self.base.wrapping_add(self.entries.len() as u32);
        let mut out: Vec<(u16, u32)> = Vec::new();
        for e in self.entries.drain(..) {
            if e.state == State::Pending {
                match out.iter_mut().find(|(p, _)| *p == e.phase) {
                    Some((_, n)) => *n += 1,
                    None => out.push((e.phase, 1)),
                }
            }
        }
        self.pending = 0;
        out
    }

    fn trim(&mut self, now: Instant) {
        while let Some(front) = self.entries.front() {
            let forget = match front.state {
                State::Done => true,
                State::TimedOut => front.sent() + self.timeout * 2 <= now,
                State::Pending => false,
            };
            if !forget {
                break;
            }
            self.entries.pop_front();
            self.base = self.base.wrapping_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_timeout_late_and_unanswered() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut f = InFlight::new(ms(100));
        for i in 0..4u64 {
            assert_eq!(f.next_seq(), i as u32);
            f.sent(t0 + ms(i * 10), t0 + ms(i * 10 + 1), 0);
        }
        assert_eq!(f.pending(), 4);
        assert!(matches!(
            f.reply(1, t0 + ms(20)),
            Settled::Record {
                event: Event::Reply { .. },
                ..
            }
        ));
        assert!(matches!(f.reply(1, t0 + ms(21)), Settled::Unmatched));
        assert_eq!(f.next_deadline(), Some(t0 + ms(101)));
        let mut timeouts = 0;
        f.expire(t0 + ms(125), |_, e| {
            assert!(matches!(e, Event::Timeout { .. }));
            timeouts += 1;
        });
        assert_eq!(timeouts, 2); // seq 0 (sent at 1) and seq 2 (sent at 21), not seq 3 (31)
        assert_eq!(f.pending(), 1);
        assert!(matches!(
            f.reply(0, t0 + ms(150)),
            Settled::Record {
                event: Event::Late { .. },
                ..
            }
        ));
        assert_eq!(f.stop(), vec![(0, 1)]);
        assert_eq!(f.pending(), 0);
    }

    #[test]
    fn sent_equals_settled() {
        let t0 = Instant::now();
        let mut f = InFlight::new(Duration::from_millis(50));
        let (mut replies, mut timeouts) = (0, 0);
        for i in 0..1000u32 {
            let at = t0 + Duration::from_millis(u64::from(i));
            let seq = f.next_seq();
            f.sent(at, at, 1);
            if i % 3 == 0
                && let Settled::Record {
                    event: Event::Reply { .. },
                    ..
                } = f.reply(seq, at)
            {
                replies += 1;
            }
            f.expire(at, |_, _| timeouts += 1);
        }
        let unanswered: u32 = f.stop().iter().map(|(_, n)| n).sum();
        assert_eq!(replies + timeouts + unanswered, 1000);
    }
}
