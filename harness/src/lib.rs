//! `swarm`: plan -> schedule -> drivers -> recorder -> run file. (Filled by the swarm issues.)
