//! Broadcast accounting: who should have received what, and what each subscriber did
//! receive (docs/ARCHITECTURE.md#broadcast).
//!
//! Receives the plan (roles and rooms), publishers' commits, and each subscriber's joins,
//! drops, reconnects and deliveries. Emits samples through the driver: first arrivals with
//! their one-way times, duplicates, reordering, foreign messages, and per subscriber one
//! final tally per phase and room size class in which
//! `delivered + missed_while_disconnected + lost = expected`.
//! Must not: touch the network, or keep memory per message.
//!
//! [`layout`] says who publishes and who subscribes where; [`board`] is the publish log
//! (atomics) that receivers read; [`receiver`] keeps one subscriber's streams
//! ([`stream`]) and turns them into counts with [`ranges`] arithmetic; [`record`] is the
//! recorder's side (counts, latency by room size, the run file's `broadcast` section).
//! The connection's part of the role (joins, publishes, deliveries) is the driver's
//! (`driver/conn/roles.rs`), which reads [`Role`] from here.

pub mod args;
pub mod board;
pub mod layout;
pub mod ranges;
pub mod receiver;
pub mod record;
pub mod relay;
pub mod stream;

pub use board::PublishLog;
pub use layout::{Layout, Role};
pub use receiver::Receiver;
