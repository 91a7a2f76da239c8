//! Command-line arguments of the churn scenario (`swarm churn`: the broadcast arguments plus
//! the drop rate), and the examples of `swarm churn --help`.
//!
//! Receives `argv` (through clap, flattened into the command that `cli/scenarios.rs`
//! assembles). Emits [`ChurnRateArgs`] and, from it, the raw phase's `churn-rate` key.
//! Must not: import the CLI (the CLI imports this), check cross-field rules (the plan
//! does) or touch sockets.

use clap::Args;

use crate::model::parse_rate;
use crate::plan::RawPhase;

/// The churn of `swarm churn`.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Churn")]
pub struct ChurnRateArgs {
    /// Drops per second over all subscribers (each a transport close, then a reconnect
    /// after --reconnect-delay), e.g. 20/s.
    #[arg(long, default_value = "5/s", value_parser = parse_rate)]
    pub churn_rate: f64,
}

impl ChurnRateArgs {
    /// `base` with its `churn-rate` key.
    pub fn phase_keys(&self, base: RawPhase) -> RawPhase {
        RawPhase {
            churn_rate: Some(Ok(self.churn_rate)),
            ..base
        }
    }
}

pub const CHURN_HELP: &str = "\
Examples:
  swarm churn http://127.0.0.1:3000 --subscribers 200 --rate 50/s --churn-rate 20/s \\
        --reconnect-delay 200ms
  swarm churn --churn-rate 10/s --duration 30s      embedded server

Subscribers drop (a transport close) and reconnect after --reconnect-delay while the
broadcast goes on. With Socket.IO connection state recovery on the server, the client sends
its pid and last offset on reconnect and replayed messages count as recovered.";
