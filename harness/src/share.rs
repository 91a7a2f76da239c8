//! Which clients each process of a run owns, and how many processes a plan gets.
//!
//! Receives a validated [`Plan`] and the number of processes. Emits, for every client, the
//! worker that owns it ([`Owners`]), or why the plan cannot be split that way.
//! Must not: change any client's schedule: a worker runs the whole plan's schedule and
//! layout and only skips the clients it does not own, so client ids, rooms, send instants
//! and seeds are those of a one-process run.
//!
//! Rooms are whole (every member and publisher of room r in worker r mod N) unless that
//! cannot be, or would leave workers idle: fewer rooms than workers, clients that change
//! rooms between phases, or a worker that would hold more than [`CLIENTS_PER_PROC`]. Then
//! the run is *split*: every client c goes to worker c mod N, and the workers copy each
//! other's publish logs through the coordinator (scenario/broadcast/relay.rs). A steered
//! run (`swarm capacity`) and a run against several targets are never split (a room on two
//! servers would not reach all its members); where they would have to be, the plan is
//! refused, saying why. The server publisher's room (`server-publisher`) is dealt round
//! robin without copies: each receiver counts the server's ticks by the wall clock and the
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
    /// Rooms spread over the workers (every client c in worker c mod N), their publish
    /// logs copied between them.
    split: bool,
}

impl Owners {
    /// The owners of `plan`'s clients over `count` workers, its rooms split when they
    /// must be or whole rooms would leave workers idle (module docs); `steered`: a
    /// steered run, never split.
    pub fn new(plan: &Plan, count: u32, steered: bool) -> Result<Owners, String> {
        let mut owners = Owners {
            count: count.max(1),
            layout: Layout::new(plan),
            schedule_phases: plan.phases.iter().map(|p| p.clients).collect(),
            split: false,
        };
        if owners.count == 1
            || owners.layout.server_publisher
            || owners.layout.max_publishers() == 0
        {
            return Ok(owners);
        }
        let whole = owners.check();
        let crowded = whole.is_ok()
            && owners
                .per_worker_peak()
                .iter()
                .any(|&n| n > CLIENTS_PER_PROC);
        let idle = owners.layout.rooms() < owners.count;
        if whole.is_ok() && !crowded && (!idle || steered) {
            return Ok(owners);
        }
        let why = match &whole {
            Err(e) => e.clone(),
            Ok(()) if crowded => {
                format!("a worker would hold more than {CLIENTS_PER_PROC} clients of whole rooms")
            }
            Ok(()) => String::new(),
        };
        if steered {
            return Err(format!(
                "{why}; a capacity search keeps each room in one worker: use more, smaller \
                 rooms"
            ));
        }
        if !plan.target.more.is_empty() {
            if whole.is_ok() && !crowded {
                return Ok(owners);
            }
            return Err(format!(
                "{why}; with several targets each room must stay in one worker (a room \
                 split over two servers would not reach all its members)"
            ));
        }
        owners.split = true;
        Ok(owners)
    }

    /// True when the rooms are spread over the workers (module docs).
    pub fn split(&self) -> bool {
        self.split
    }

    /// The worker that runs `client`: the owner of the first room it publishes into or
    /// joins in any phase (rooms are dealt round robin), else `client % count`. With the
    /// server publishing, every client is dealt round robin (`client % count`).
    pub fn owner(&self, client: u32) -> u32 {
        if self.layout.server_publisher || self.split {
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
                         holds",
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
