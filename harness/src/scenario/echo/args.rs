//! Command-line help of the echo scenario (`swarm echo --help` examples). Its own arguments
//! (rate, payload size, arrival, max in flight; the echo event and reply event; the drain)
//! are `cli.rs`'s `SendArgs`, `EchoEventArgs` and `DrainArgs`, assembled in `EchoArgs`.
//!
//! Receives nothing. Emits [`ECHO_HELP`].
//! Must not: import the CLI (the CLI imports this).

pub const ECHO_HELP: &str = "\
Examples:
  swarm echo                                                 embedded server, Socket.IO
  swarm echo http://127.0.0.1:3000 --clients 1000 --rate 10/s --duration 20s
  swarm echo ws://127.0.0.1:3000/ws/echo --clients 100 --rate 50/s --payload-size 512
  swarm echo http://127.0.0.1:3000/custom --event echo --max-in-flight 1 \\
        --threshold 'echo.latency.p99 < 50ms' --threshold 'echo.timeouts <= 0.1%'

Sends follow the schedule whether or not replies came back (open model). With
--max-in-flight N a client waits when N messages are outstanding, but latency is still
measured from the instant the schedule intended (coordinated omission shows).";
