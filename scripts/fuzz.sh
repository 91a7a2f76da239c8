#!/usr/bin/env bash
# The long property-test run ("bench-like job"): the proptest suites of the network parsers
# (protocol: Engine.IO, Socket.IO and msgpack decoders and the Socket.IO header reader;
# target-server: the echo fast path's header and payload slicing; harness: payload finder,
# inbound frame reader, WebSocket response head, Engine.IO handshake and polling bodies,
# Socket.IO CONNECT-reply reader) with many more cases than the test suite's default of 256.
#
# Usage: scripts/fuzz.sh [CASES]   (default 100000; PROPTEST_CASES in the environment wins)
# Runs `cargo test --release` on the crates' lib tests, filtered to the proptest functions;
# exits non-zero when a property fails (proptest prints the minimal failing input).
set -euo pipefail
cd "$(dirname "$0")/.."
export PROPTEST_CASES="${PROPTEST_CASES:-${1:-100000}}"
echo "PROPTEST_CASES=$PROPTEST_CASES"
cargo test --release --locked -p protocol --lib -- never_panic round_trip socketio::header::
cargo test --release --locked -p target-server --lib -- sio::raw::
cargo test --release --locked -p harness --lib -- never_panics find_agrees_with_write
