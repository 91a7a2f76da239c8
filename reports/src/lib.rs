//! The swarmbench run file: schema, merge and renderings. (Filled by the swarm issues.)
