//! Test support shared by the swarmbench crates (dev-only, never published):
//!
//! - [`deps`]: the one rule for a missing Node.js, Python or Chromium (fails under `CI`);
//! - [`peer`]: Node and Python peers started as child processes, ready on their
//!   `{"listening":PORT}` line within a deadline, killed by PID on drop; scripts run to
//!   their end under a deadline;
//! - [`server`]: the reference server in-process on 127.0.0.1:0, on its own runtime;
//! - [`client`]: raw HTTP, WebSocket, Engine.IO and Socket.IO clients for the server's
//!   tests, and the server as a task of the test's own runtime;
//! - [`run`]: the swarm's end-to-end scaffold (server, temp dir, command line, run);
//! - [`conformance_case!`] and [`engineio_cases!`]: conformance cases as tests.
//!
//! See docs/ARCHITECTURE.md, "Test kit".

pub mod client;
pub mod conformance;
pub mod deps;
pub mod peer;
pub mod run;
pub mod server;

pub use deps::{
    CHROMIUM, browser_ready, ci, interop_dir, missing_dependency, node_ready, python_ready,
};
pub use peer::{Peer, ScriptRun, run_node_script, run_node_script_async, run_to_end};
pub use run::{EmbeddedRun, Swarm, swarm_argv};
pub use server::{Target, target_server_process};
