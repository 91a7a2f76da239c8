//! Command-line help of the connect scenario (`swarm connect --help` examples). Its
//! arguments (clients and pacing, target, reconnects, outputs) are groups it shares with the
//! other commands, assembled in `cli.rs` (`ConnectArgs`); it has none of echo's sending
//! flags.
//!
//! Receives nothing. Emits [`CONNECT_HELP`].
//! Must not: import the CLI (the CLI imports this).

pub const CONNECT_HELP: &str = "\
Examples:
  swarm connect                                              embedded server, Socket.IO
  swarm connect http://127.0.0.1:3000 --clients 10k --connect-rate 2000/s --duration 30s
  swarm connect ws://127.0.0.1:3000/ws/echo --clients 500 --ramp 5s
  swarm connect https://localhost:3443 --insecure --transport polling
  swarm connect http://127.0.0.1:3000 --clients 2k --ramp 10s --dry-run     the plan only";
