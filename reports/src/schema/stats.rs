//! The per-scenario counts of a run file section: echo, broadcast (and per room size),
//! heartbeat, churn, and the outage (lost connections and how clients came back).
//!
//! Receives nothing (plain data); part of [`super::Section`]. Every field is documented in
//! docs/results-format.md.
//! Must not: change the meaning of an existing field without bumping
//! [`super::SCHEMA_VERSION`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::distribution::Distribution;

/// Echo round trips. Always `sent = received + timeouts + unanswered_at_stop` and
/// `planned = sent + skipped_disconnected`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct EchoStats {
    /// Sends the schedule meant for the clients' time in the span (their connected and
    /// disconnected time alike).
    #[serde(default)]
    pub planned: u64,
    /// Planned sends whose intended instant passed while the client had no connection
    /// (its connection was lost, or its connect failed); never sent, not in `sent`.
    #[serde(default)]
    pub skipped_disconnected: u64,
    pub sent: u64,
    /// Replies that arrived within the timeout.
    pub received: u64,
    /// Messages with no reply within the timeout.
    pub timeouts: u64,
    /// Replies that arrived after their timeout was counted (not in the percentiles).
    pub late: u64,
    /// Messages still awaiting a reply when the run stopped, after the drain.
    pub unanswered_at_stop: u64,
    /// From the intended send instant to the reply (what a user waits).
    pub latency: Distribution,
    /// From the actual send instant to the reply.
    pub service: Distribution,
}

/// Broadcast delivery (broadcast and churn phases). Always
/// `delivered + missed_while_disconnected + lost = expected`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct BroadcastStats {
    pub published: u64,
    pub expected: u64,
    pub delivered: u64,
    pub recovered: u64,
    pub missed_while_disconnected: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub reordered: u64,
    /// One-way latency of each delivery at each receiver.
    pub latency: Distribution,
    /// Messages on the broadcast path that this run did not send (other traffic).
    #[serde(default)]
    pub foreign: u64,
    /// Received, but sent while the receiver was not a member of the room (before its
    /// join ack); not part of `delivered`.
    #[serde(default)]
    pub outside_membership: u64,
    /// A run whose rooms were split over workers on several hosts: messages not received
    /// and sent within the two clocks' uncertainty of a membership's edge, so that nobody
    /// can say whether the receiver should have got them; left out of `expected` (not
    /// counted as lost).
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub ambiguous: u64,
    /// One-way latency from the publisher's actual send instant (`latency` is from the
    /// intended one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<Distribution>,
    /// The same counts per planned room size (key: the number of subscribers of the room).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub by_room_size: BTreeMap<String, RoomSizeStats>,
}

/// Broadcast counts of the rooms of one planned size. Always
/// `delivered + missed_while_disconnected + lost = expected`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RoomSizeStats {
    pub expected: u64,
    pub delivered: u64,
    pub recovered: u64,
    pub missed_while_disconnected: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub reordered: u64,
    pub outside_membership: u64,
    /// One-way latency (from the intended send instant) of the deliveries in these rooms.
    pub latency: Distribution,
}

/// Heartbeat behaviour (phases with heartbeat clients).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct HeartbeatStats {
    /// Server pings received.
    pub pings: u64,
    /// |ping-to-ping interval − advertised interval|.
    pub ping_interval_deviation: Distribution,
    /// Round trips of client pings (raw WS), when the client pings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pong_rtt: Option<Distribution>,
    /// Muted clients closed by the server, and how long after muting.
    pub muted_closes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub muted_close_delay: Option<Distribution>,
    /// Healthy clients closed with the signature of a ping timeout.
    pub false_timeouts: u64,
    /// No ping within pingInterval + pingTimeout (client-side deadline).
    pub client_timeouts: u64,
    /// Observed ping-to-ping intervals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ping_interval: Option<Distribution>,
    /// pingInterval / pingTimeout the server advertised (Engine.IO handshake), or the
    /// expected raw WS ping period (`--ping-interval`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advertised_ping_interval_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advertised_ping_timeout_ms: Option<u64>,
    /// Clients that stopped answering pings (`--mute`).
    #[serde(default)]
    pub muted: u64,
    /// Muted clients the server had not closed by the end of their stretch.
    #[serde(default)]
    pub muted_never_closed: u64,
    /// From the last answered ping to the server's close, per muted client (expected:
    /// pingInterval + pingTimeout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub muted_close_after_last_pong: Option<Distribution>,
}

/// Disconnect / reconnect churn (churn phases, and room re-joins after a drop).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ChurnStats {
    pub drops: u64,
    pub reconnects: u64,
    pub reconnect_failures: u64,
    /// From the drop to the re-join ack.
    pub reconnect: Distribution,
    /// Reconnects whose session connection state recovery restored.
    #[serde(default)]
    pub recovered_sessions: u64,
    /// Broadcast messages sent to the clients' rooms while they were away, summed over
    /// reconnects.
    #[serde(default)]
    pub away_messages: u64,
    /// The most messages sent while one client was away (one reconnect).
    #[serde(default)]
    pub away_messages_max: u64,
}

/// Lost connections and reconnects (`--reconnect`). A connection is lost when it ends
/// other than by the swarm's own close, a churn drop, or the expected close of a muted
/// client. Always `connections_lost = restored + clients_not_restored` once the run ended
/// (a client counts once per loss, however many attempts it took).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct OutageStats {
    pub connections_lost: u64,
    /// Connect attempts made by clients whose connection was lost.
    pub reconnect_attempts: u64,
    /// Those attempts that failed (their kinds are in `connect.failed_by_kind`).
    pub reconnect_failures: u64,
    /// Lost clients that got a connection back.
    pub restored: u64,
    /// Lost clients still without a connection when their phase ended (reconnects off,
    /// attempts exhausted, or the target did not come back in time).
    pub clients_not_restored: u64,
    /// Most clients without their connection at once.
    pub peak_clients_away: u64,
    /// From the loss of a connection to its replacement being connected.
    pub restore: Distribution,
    /// First loss and last restore, from the run start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_loss_offset_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_restore_offset_ms: Option<u64>,
}

fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}
