//! `swarm`: plan -> schedule -> drivers -> recorder -> run file. (Being built.)

pub mod sample;

pub mod health;
pub mod output;
pub mod recorder;
