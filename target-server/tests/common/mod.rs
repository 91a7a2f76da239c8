//! Test support of the server's integration tests: the raw clients and the in-process
//! server of `testkit::client`, and the Engine.IO cases both conformance files replay.

#![allow(dead_code)]

pub mod eio_cases;

pub use testkit::client::*;
