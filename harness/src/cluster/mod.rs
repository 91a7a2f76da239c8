//! One run over several swarm processes: the coordinator (the process the user started)
//! and its workers (`swarm worker`), local or on other machines.
//!
//! Receives a validated plan that asks for workers (`--procs`, `--expect-workers`). Emits
//! one results folder, merged exactly from the workers' results (`merge`).
//! Must not: let a worker outlive its coordinator (a worker whose control connection
//! closes stops), or admit a worker without the run's token.
//!
//! Modules: `wire` (the control protocol), `coordinator` (with `admit` and `collect`),
//! `worker`, `merge`, `live` (the workers' seconds merged for the live outputs).
//! docs/DISTRIBUTED.md describes the whole.

pub mod admit;
pub mod collect;
pub mod coordinator;
pub mod live;
pub mod merge;
pub mod wire;
pub mod worker;
