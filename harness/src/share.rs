//! Which clients each process of a run owns, and how many processes a plan gets.
//!
//! Receives a validated [`Plan`] and the number of processes. Emits, for every client, the
//! worker that owns it ([`Owners`]), or why the plan cannot be split that way.
//! Must not: split a room that swarm clients publish into across workers (its accounting
//! reads the publishers' counters, in one process), or change any client's schedule: a
//! worker runs the whole plan's schedule and layout and only skips the clients it does not
//! own, so client ids, rooms, send instants and seeds are those of a one-process run.
//! The server publisher's room (`server-publisher`) is split: its subscribers are dealt
//! round robin, since each receiver counts the server's ticks by the wall clock and the
//! tick clock its own worker learned, and needs nothing of another process.
//!
//! The processes themselves (coordinator, workers, their protocol, the merge) are in
//! `cluster/`; docs/DISTRIBUTED.md describes them.

pub use crate::model::{CLIENTS_PER_PROC, Procs};
use crate::plan::Plan;
use crate::scenario::broadcast::{Layout, Role};

/// One worker's share of a run: it owns the clients [`Owners::owner`] gives `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

/// Which worker owns each client of a plan.
#[derive(Debug, Clone)]
pub struct Owners {
    count: u32,
    layout: Layout,
    schedule_phases: Vec<u32>,
}

impl Owners {
    /// The owners of `plan`'s clients over `count` workers, or why the plan cannot be split
    /// that way (a client that changes rooms between phases into a room another worker owns).
    pub fn new(plan: &Plan, count: u32) -> Result<Owners, String> {
        let owners = Owners {
            count: count.max(1),
            layout: Layout::new(plan),
            schedule_phases: plan.phases.iter().map(|p| p.clients).collect(),
        };
        owners.check()?;
        Ok(owners)
    }

    /// The worker that runs `client`: the owner of the first room it publishes into or
    /// joins in any phase (rooms are dealt round robin), else `client % count`. With the
    /// server publishing, every client is dealt round robin (`client % count`).
    pub fn owner(&self, client: u32) -> u32 {
        if self.layout.server_publisher {
            return client % self.count;
        }
        let room = self
            .schedule_phases
            .iter()
            .enumerate()
            .filter(|&(_, &n)| client < n)
            .find_map(|(p, _)| match self.layout.role(p as u16, client) {
                Role::Publisher { room } | Role::Subscriber { room } => Some(room),
                _ => None,
            });
        match room {
            Some(room) => room % self.count,
            None => client % self.count,
        }
    }

    /// Clients each worker owns at most at once (for the file limit and the balance).
    pub fn per_worker_peak(&self) -> Vec<u32> {
        let mut peak = vec![0u32; self.count as usize];
        for &n in &self.schedule_phases {
            let mut now = vec![0u32; self.count as usize];
            for c in 0..n {
                now[self.owner(c) as usize] += 1;
            }
            for (p, v) in peak.iter_mut().zip(now) {
                *p = (*p).max(v);
            }
        }
        peak
    }

    fn check(&self) -> Result<(), String> {
        if self.layout.server_publisher {
            return Ok(());
        }
        for (p, &n) in self.schedule_phases.iter().enumerate() {
            for c in 0..n {
                if let Role::Publisher { room } | Role::Subscriber { room } =
                    self.layout.role(p as u16, c)
                    && room % self.count != self.owner(c)
                {
                    return Err(format!(
                        "client {c} moves to room {room} in phase {}, which another worker \
                         holds; a room's publishers and subscribers must stay in one process: \
                         run this plan with --procs 1, or keep each client's room the same \
                         in every phase",
                        p + 1
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Whether `client` belongs to `shard` (always, without sharding).
pub fn owns(owners: Option<&(Owners, Shard)>, client: u32) -> bool {
    owners.is_none_or(|(o, s)| o.owner(client) == s.index)
}

#[cfg(test)]
#[path = "share_tests.rs"]
mod tests;
