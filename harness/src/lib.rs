//! `swarm`: plan -> schedule -> drivers -> recorder -> run file. (Being built.)

pub mod sample;
