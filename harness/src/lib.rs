//! `swarm`: opens thousands of WebSocket / Socket.IO clients against a URL and records
//! what happened, truthfully.
//!
//! The pipeline, one module per stage:
//!
//! ```text
//! cli (argv) / plan.toml --plan--> Plan (validated; every error before any socket opens)
//! Plan --schedule--> intended instants: connects, sends (open model; max-in-flight caps)
//! swarm: spawns one driver task per client (CancellationToken + TaskTracker)
//!   driver: ws | socketio (websocket | polling -> upgrade) --Sample--> recorder
//! recorder --watch--> progress (live line)     recorder --> RunFile --> output
//! run: glues the stages, evaluates thresholds, picks the exit code
//! scenario/<name>: a scenario's arguments, roles and rooms, accounting, run-file section
//!   (imported by cli, driver, recorder, run; imports plan and the metric leaf)
//! ```
//!
//! Without a URL, [`embedded`] starts a target-server on its own runtime threads.

pub mod capacity;
pub mod cli;
pub mod cluster;
pub mod commands;
pub mod data;
pub mod driver;
pub mod embedded;
pub mod metric;
pub mod model;
pub mod payload;
pub mod plan;
pub mod preflight;
pub mod progress;
pub mod run;
pub mod sample;
pub mod scenario;
pub mod schedule;
pub mod share;
pub mod source;
pub mod swarm;
pub mod template;

pub mod health;
pub mod live;
pub mod output;
pub mod recorder;
