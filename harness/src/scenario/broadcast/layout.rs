//! Who does what in each phase: publishers, subscribers and their rooms, heartbeat-only
//! clients, and the planned size of every room (its "room size class").
//!
//! Receives the validated plan. Emits, for any (phase, client), the client's [`Role`],
//! room names, the room size class, and for each room the publishers that ever publish
//! into it. Pure and computed once per run.
//! Must not: depend on anything that happened during the run.
//!
//! Client order within a phase: publishers first (`0..P`), then subscribers (`P..P+S`),
//! then heartbeat-only clients, then (echo / connect phases) the scenario's own clients
//! before them. Publishers first keeps a publisher's identity (and its sequence numbers)
//! stable when later phases add subscribers. Publisher `j` publishes into room `j % K`;
//! subscriber `i` joins room `i % K` (or `i / room_size`).

use crate::plan::{Plan, Scenario};

/// What one client does in one phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Connect / echo clients (the phase's scenario decides).
    Plain,
    /// Idle, watching heartbeats (may be muted).
    Heartbeat,
    /// Publishes into room `room` at the phase's rate.
    Publisher { room: u32 },
    /// Member of room `room`.
    Subscriber { room: u32 },
}

/// Broadcast roles of one phase.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PhaseLayout {
    clients: u32,
    publishers: u32,
    subscribers: u32,
    rooms: u32,
    room_size: Option<u32>,
    heartbeat_clients: u32,
    heartbeat_phase: bool,
}

/// The run's layout.
#[derive(Debug, Clone)]
pub struct Layout {
    phases: Vec<PhaseLayout>,
    /// Room names by index.
    names: Vec<String>,
    /// Per room: every client that publishes into it in some phase (sorted).
    room_publishers: Vec<Vec<u32>>,
    /// `--server-publisher ROOM`: every subscriber joins room 0, named ROOM.
    pub server_publisher: bool,
}

impl Layout {
    pub fn new(plan: &Plan) -> Layout {
        let mut max_rooms = 0;
        let mut server_room: Option<String> = None;
        let phases: Vec<PhaseLayout> = plan
            .phases
            .iter()
            .map(|p| {
                let hb = p.heartbeat.clients.min(p.clients);
                let (publishers, subscribers, rooms, room_size) = match &p.fanout {
                    Some(f) => {
                        if let Some(r) = &f.server_publisher {
                            server_room = Some(r.clone());
                        }
                        (f.publishers, f.subscribers, f.rooms.max(1), f.room_size)
                    }
                    None => (0, 0, 0, None),
                };
                max_rooms = max_rooms.max(rooms);
                PhaseLayout {
                    clients: p.clients,
                    publishers,
                    subscribers,
                    rooms,
                    room_size,
                    heartbeat_clients: hb,
                    heartbeat_phase: p.scenario == Scenario::Heartbeat,
                }
            })
            .collect();
        let names = match &server_room {
            Some(r) => vec![r.clone()],
            None => (0..max_rooms).map(|r| format!("room-{r}")).collect(),
        };
        let mut room_publishers = vec![Vec::new(); names.len()];
        for l in &phases {
            for j in 0..l.publishers {
                let r = (j % l.rooms.max(1)) as usize;
                if let Some(list) = room_publishers.get_mut(r)
                    && !list.contains(&j)
                {
                    list.push(j);
                }
            }
        }
        for list in &mut room_publishers {
            list.sort_unstable();
        }
        Layout {
            phases,
            names,
            room_publishers,
            server_publisher: server_room.is_some(),
        }
    }

    /// The role of `client` in `phase`.
    pub fn role(&self, phase: u16, client: u32) -> Role {
        let Some(l) = self.phases.get(usize::from(phase)) else {
            return Role::Plain;
        };
        if l.heartbeat_phase || client >= l.clients.saturating_sub(l.heartbeat_clients) {
            return Role::Heartbeat;
        }
        if client < l.publishers {
            return Role::Publisher {
                room: client % l.rooms.max(1),
            };
        }
        let i = client - l.publishers;
        if i < l.subscribers {
            let room = match l.room_size {
                Some(m) => i / m.max(1),
                None => i % l.rooms.max(1),
            };
            return Role::Subscriber { room };
        }
        Role::Plain
    }

    /// Name of room `room`.
    pub fn room_name(&self, room: u32) -> &str {
        self.names.get(room as usize).map_or("", String::as_str)
    }

    /// Number of rooms used by any phase.
    pub fn rooms(&self) -> u32 {
        self.names.len() as u32
    }

    /// Planned members of `room` in `phase` (the room size class); 0 when not a room then.
    pub fn room_size(&self, phase: u16, room: u32) -> u32 {
        self.room_size_with(phase, room, u32::MAX)
    }

    /// Members of `room` in `phase` when the phase runs only its first `clients` clients (a
    /// steered run decides fewer than the plan's; publishers come first, so the
    /// subscribers are what is left of `clients` after them, at most the planned ones).
    pub fn room_size_with(&self, phase: u16, room: u32, clients: u32) -> u32 {
        let Some(l) = self.phases.get(usize::from(phase)) else {
            return 0;
        };
        let subscribers = l.subscribers.min(clients.saturating_sub(l.publishers));
        if subscribers == 0 {
            return 0;
        }
        match l.room_size {
            Some(m) => {
                let m = m.max(1);
                subscribers.saturating_sub(room * m).min(m)
            }
            None => {
                let k = l.rooms.max(1);
                if room >= k {
                    0
                } else {
                    subscribers / k + u32::from(room < subscribers % k)
                }
            }
        }
    }

    /// Clients that publish into `room` in some phase, sorted.
    pub fn publishers_of(&self, room: u32) -> &[u32] {
        self.room_publishers
            .get(room as usize)
            .map_or(&[], Vec::as_slice)
    }

    /// The room `publisher` publishes into in `phase`, if it publishes then.
    pub fn publishes_into(&self, phase: u16, publisher: u32) -> Option<u32> {
        match self.role(phase, publisher) {
            Role::Publisher { room } => Some(room),
            _ => None,
        }
    }

    /// Number of phases.
    pub fn phases(&self) -> u16 {
        self.phases.len() as u16
    }

    /// Largest publisher count of any phase (publisher ids are `0..max_publishers`).
    pub fn max_publishers(&self) -> u32 {
        self.phases.iter().map(|l| l.publishers).max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_rooms_and_sizes() {
        let plan = crate::plan::tests_support::broadcast_plan(2, 10, 3, None);
        let l = Layout::new(&plan);
        assert_eq!(l.role(0, 0), Role::Publisher { room: 0 });
        assert_eq!(l.role(0, 1), Role::Publisher { room: 1 });
        assert_eq!(l.role(0, 2), Role::Subscriber { room: 0 });
        assert_eq!(l.role(0, 3), Role::Subscriber { room: 1 });
        assert_eq!(l.role(0, 4), Role::Subscriber { room: 2 });
        assert_eq!(l.role(0, 5), Role::Subscriber { room: 0 });
        // 10 subscribers over 3 rooms: 4, 3, 3.
        assert_eq!(
            (l.room_size(0, 0), l.room_size(0, 1), l.room_size(0, 2)),
            (4, 3, 3)
        );
        // Fewer clients decided (a steered run): 2 publishers and 7 subscribers, 3, 2, 2.
        assert_eq!(
            (
                l.room_size_with(0, 0, 9),
                l.room_size_with(0, 1, 9),
                l.room_size_with(0, 2, 9)
            ),
            (3, 2, 2)
        );
        assert_eq!(l.room_size_with(0, 0, 2), 0);
        assert_eq!(l.room_size_with(0, 0, 100), 4);
        assert_eq!(l.publishers_of(0), &[0]);
        assert_eq!(l.publishers_of(1), &[1]);
        assert!(l.publishers_of(2).is_empty());
        assert_eq!(l.room_name(2), "room-2");
        let plan = crate::plan::tests_support::broadcast_plan(1, 10, 0, Some(4));
        let l = Layout::new(&plan);
        assert_eq!(l.role(0, 1 + 5), Role::Subscriber { room: 1 });
        assert_eq!(
            (l.room_size(0, 0), l.room_size(0, 1), l.room_size(0, 2)),
            (4, 4, 2)
        );
    }
}
