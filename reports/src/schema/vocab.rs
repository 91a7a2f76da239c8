//! The run file's closed vocabularies: scenario, protocol, transport and arrival names, and
//! the typed per-phase settings (`meta.plan[].settings`).
//!
//! Receives nothing (plain data). Each enum is written as the same lowercase string the
//! run file always carried (docs/results-format.md), so older files read unchanged.
//! A value this swarm does not know (a newer swarm's file) reads as `Other(text)`: it is kept
//! as written, shown as written, written back as it was, and matches no known value. A
//! setting this swarm does not know is kept the same way, in [`PhaseSettings::other`].
//! Must not: change a spelling (old files would read as `Other`), or make a reader fail on
//! a value it does not know.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Defines a string-valued enum with known variants and an `Other(String)` catch-all (its
/// `#[default]` variant is what `Default` gives, for building a file in code).
macro_rules! vocabulary {
    (
        $(#[$doc:meta])*
        $name:ident { $( $(#[$vdoc:meta])* $variant:ident = $text:literal ),+ $(,)? }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub enum $name {
            $( $(#[$vdoc])* $variant, )+
            /// A value this swarm does not know (written by a newer swarm), kept as written.
            Other(String),
        }

        impl $name {
            /// Every known value, in documentation order.
            pub const KNOWN: &'static [$name] = &[$($name::$variant),+];

            /// The run file's spelling.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $text, )+
                    $name::Other(s) => s,
                }
            }

            /// Reads a spelling; an unknown one becomes `Other`.
            pub fn parse(s: &str) -> $name {
                match s {
                    $( $text => $name::$variant, )+
                    other => $name::Other(other.to_string()),
                }
            }

            /// The spellings of `items` joined with `sep` (e.g. `connect + echo`).
            pub fn join(items: &[$name], sep: &str) -> String {
                items.iter().map($name::as_str).collect::<Vec<_>>().join(sep)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> $name {
                $name::parse(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<$name, D::Error> {
                struct Visit;
                impl serde::de::Visitor<'_> for Visit {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str(concat!("a ", stringify!($name), " name (a string)"))
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$name, E> {
                        Ok($name::parse(v))
                    }
                }
                d.deserialize_str(Visit)
            }
        }
    };
}

vocabulary! {
    /// What a phase does (`meta.scenarios`, `meta.plan[].scenario`).
    Scenario {
        /// Connect a ramp of clients and hold them.
        #[default]
        Connect = "connect",
        /// Each client sends messages and times the replies.
        Echo = "echo",
        /// Publishers send to rooms; subscribers' deliveries are accounted.
        Broadcast = "broadcast",
        /// Server pings (and muted clients) are timed.
        Heartbeat = "heartbeat",
        /// Broadcast while clients drop and reconnect.
        Churn = "churn",
        /// Each client runs a scripted message flow (per step counts and latency).
        Flow = "flow",
    }
}

vocabulary! {
    /// The wire protocol of the target (`meta.protocol`).
    Protocol {
        /// Raw WebSocket.
        #[default]
        Ws = "ws",
        /// Socket.IO (Engine.IO v4).
        Socketio = "socketio",
    }
}

vocabulary! {
    /// How the clients' connections carried messages (`meta.transport`).
    Transport {
        /// A WebSocket (always, for raw WS).
        #[default]
        Websocket = "websocket",
        /// Socket.IO HTTP long-polling, then the upgrade.
        Polling = "polling",
    }
}

vocabulary! {
    /// How a client's sends are spaced (`meta.plan[].arrival`).
    Arrival {
        /// Evenly spaced.
        #[default]
        Constant = "constant",
        /// Exponentially distributed gaps (a Poisson process).
        Poisson = "poisson",
    }
}

/// The settings of a plan phase beyond its common fields (`meta.plan[].settings`); each is
/// absent when the phase does not use it. Fields are in alphabetical order, the order the
/// file has always had them in.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PhaseSettings {
    /// Churn: client drops per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub churn_rate_per_s: Option<f64>,
    /// Heartbeat: the raw WS clients' own ping period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ping_interval_ms: Option<u64>,
    /// Heartbeat: clients that watch the server's pings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_clients: Option<u64>,
    /// Heartbeat: when the muted clients stop answering pings, from the phase start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mute_at_ms: Option<u64>,
    /// Heartbeat: share of the heartbeat clients that stop answering pings (0 to 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mute_fraction: Option<f64>,
    /// Broadcast and churn: clients that publish.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publishers: Option<u64>,
    /// Broadcast and churn: subscribers of the largest planned room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_size: Option<u64>,
    /// Broadcast and churn: number of rooms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rooms: Option<u64>,
    /// Broadcast: the room the target itself publishes to (no client publishers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_publisher: Option<String>,
    /// Broadcast and churn: clients that subscribe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscribers: Option<u64>,
    /// Settings this swarm does not know (a newer swarm's file), kept as written.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

impl PhaseSettings {
    /// True when the phase has no settings at all.
    pub fn is_empty(&self) -> bool {
        self.pairs().is_empty()
    }

    /// Every setting as `(name, value)`, in the file's order, values as JSON text (strings
    /// without quotes).
    pub fn pairs(&self) -> Vec<(String, String)> {
        let value = serde_json::to_value(self).unwrap_or_default();
        let Some(map) = value.as_object() else {
            return Vec::new();
        };
        map.iter()
            .map(|(k, v)| {
                let text = match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), text)
            })
            .collect()
    }
}
