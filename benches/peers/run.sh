#!/usr/bin/env bash
# The peer comparison: one script, one run, one machine, one target, side by side
# (issue 6; results in docs/PERFORMANCE.md).
#
#   benches/peers/run.sh [--quick]
#
# 1. Installs what it needs (network): Artillery (pinned, into benches/peers/.work/node,
#    browser download skipped), the interop/ packages (npm ci) if missing; builds swarm,
#    target-server, the benches `ceiling` example and the socketioxide peer
#    (benches/peers/socketioxide-server, its own cargo project).
# 2. Measures, as root inside a private network namespace (`unshare -n`, loopback up) so
#    nothing can leave the machine; otherwise on 127.0.0.1 directly:
#    A. load generators against the Node socket.io 4.8 server (interop/sio-server.mjs),
#       emit + ack at a fixed rate: swarm vs Artillery 2 (socketio engine) vs a plain Node
#       socket.io-client swarm (node-sio-swarm.mjs);
#    B. servers under the same swarm load: target-server vs Node socket.io vs socketioxide,
#       echo round trips/s (`swarm echo`) and broadcast deliveries/s (`swarm broadcast`) at
#       equal latency bounds, server CPU per 1,000 messages;
#    C. the physical ceiling: a raw TCP echo pair vs our WS echo (examples/ceiling.rs).
# 3. Prints the Markdown table (table.mjs) and leaves every raw result in the run folder.
#
# Environment: PEERS_WORK (default benches/peers/.work), ARTILLERY_VERSION (default 2.0.21,
# the last release that declares Node 20; 2.0.34 also runs on Node 20 with a warning).
set -euo pipefail

PEERS=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$PEERS/../.." && pwd)
WORK=${PEERS_WORK:-$PEERS/.work}
ARTILLERY_VERSION=${ARTILLERY_VERSION:-2.0.21}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET_DIR/release
EX=$TARGET_DIR/release/examples
SX=$PEERS/socketioxide-server/target/release/socketioxide-server

# Load shapes (--quick shortens everything for a smoke run; its numbers are not published).
GEN_CLIENTS=1000 GEN_RATE=5 GEN_SECS=20 BASE_CLIENTS=10 BASE_SECS=5
ECHO_CLIENTS=1000 ECHO_RATES="10 20 30 40 50 60 80 100 150" ECHO_SECS=6 ECHO_P99_BOUND_US=50000
FAN_SUBS=1000 FAN_RATES="50 100 150 200 300 400 600 800 1200 1600 2400" FAN_SECS=5 FAN_P99_BOUND_US=100000
CEIL_CONNS=100 CEIL_SECS=5
QUICK=0

step() { printf '\n==> %s\n' "$*" >&2; }

if [ "${1:-}" != "--measure" ]; then
  [ "${1:-}" = "--quick" ] && QUICK=1
  command -v node >/dev/null || { echo "node (20+) is required" >&2; exit 2; }
  command -v /usr/bin/time >/dev/null || { echo "/usr/bin/time (Debian package 'time') is required" >&2; exit 2; }

  step "npm: interop/ packages, Artillery $ARTILLERY_VERSION into $WORK/node"
  if [ ! -d "$ROOT/interop/node_modules/socket.io" ]; then
    (cd "$ROOT/interop" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
  fi
  mkdir -p "$WORK/node"
  have=$(node -p "try{require('$WORK/node/node_modules/artillery/package.json').version}catch{''}" 2>/dev/null || true)
  if [ "$have" != "$ARTILLERY_VERSION" ]; then
    cat > "$WORK/node/package.json" <<EOF
{ "name": "swarmbench-peers", "private": true, "dependencies": { "artillery": "$ARTILLERY_VERSION" } }
EOF
    (cd "$WORK/node" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit --no-fund --loglevel=error)
  fi

  step "cargo: swarm, target-server, benches examples, socketioxide peer (release)"
  (cd "$ROOT" && cargo build --release --quiet -p harness --bin swarm -p target-server --bin target-server)
  (cd "$ROOT" && cargo build --release --quiet -p benches --example ceiling)
  cargo build --release --quiet --manifest-path "$PEERS/socketioxide-server/Cargo.toml"

  OUT="$WORK/run-$(date -u +%Y%m%dT%H%M%SZ)"
  mkdir -p "$OUT"
  if [ "$(id -u)" = 0 ] && unshare -n -- true 2>/dev/null; then
    step "measuring inside a private network namespace (unshare -n, loopback up)"
    echo "netns" > "$OUT/isolation"
    unshare -n -- bash -c 'ip link set lo up && exec "$@"' _ "$0" --measure "$OUT" "$QUICK"
  else
    step "measuring on 127.0.0.1 (not root, or unshare unavailable: no private namespace)"
    echo "loopback" > "$OUT/isolation"
    "$0" --measure "$OUT" "$QUICK"
  fi
  node "$PEERS/table.mjs" "$OUT" | tee "$OUT/table.md"
  echo "raw results: $OUT" >&2
  exit 0
fi

# ---- measuring (inside the namespace when root) -------------------------------------------
OUT=$2
QUICK=$3
if [ "$QUICK" = 1 ]; then
  GEN_CLIENTS=100 GEN_SECS=4 BASE_SECS=2 ECHO_CLIENTS=100 ECHO_RATES="10 40" ECHO_SECS=2
  FAN_SUBS=100 FAN_RATES="20 100" FAN_SECS=2 CEIL_CONNS=20 CEIL_SECS=2
fi
export ARTILLERY_DISABLE_TELEMETRY=true
TCK=$(getconf CLK_TCK)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

cat > "$OUT/settings.json" <<EOF
{"gen_clients":$GEN_CLIENTS,"gen_rate":$GEN_RATE,"gen_secs":$GEN_SECS,"base_clients":$BASE_CLIENTS,
 "echo_clients":$ECHO_CLIENTS,"echo_secs":$ECHO_SECS,"echo_p99_bound_us":$ECHO_P99_BOUND_US,
 "fan_subs":$FAN_SUBS,"fan_secs":$FAN_SECS,"fan_p99_bound_us":$FAN_P99_BOUND_US,
 "ceil_conns":$CEIL_CONNS,"ceil_secs":$CEIL_SECS,"artillery":"$ARTILLERY_VERSION","quick":$QUICK,
 "date":"$(date -u +%Y-%m-%dT%H:%M:%SZ)","node":"$(node --version)","kernel":"$(uname -r)",
 "cores":$(nproc),"mem_kb":$(awk '/MemTotal/ {print $2}' /proc/meminfo),
 "cpu":"$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"}
EOF

# start_server NAME CMD... : runs CMD in the background, waits for its port; sets SPID, PORT.
start_server() {
  local name=$1; shift
  "$@" > "$OUT/server-$name.log" 2>&1 &
  SPID=$!
  PIDS+=("$SPID")
  PORT=""
  for _ in $(seq 1 100); do
    PORT=$(grep -oE '(listening on ([a-z]+://)?127\.0\.0\.1:|"listening":)[0-9]+' "$OUT/server-$name.log" | grep -oE '[0-9]+$' | head -1 || true)
    [ -n "$PORT" ] && break
    sleep 0.1
  done
  [ -n "$PORT" ] || { echo "server $name did not start:"; cat "$OUT/server-$name.log"; exit 1; } >&2
}
stop_server() { kill "$SPID" 2>/dev/null || true; wait "$SPID" 2>/dev/null || true; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# timed FILE CMD... : stdout to FILE, /usr/bin/time figures to FILE.time (JSON).
timed() {
  local file=$1; shift
  /usr/bin/time -f '{"user_s":%U,"sys_s":%S,"maxrss_kb":%M,"wall_s":%e}' -o "$file.time" "$@" > "$file" 2> "$file.err" || true
}
# server_cpu FILE BEFORE : writes the server's CPU seconds since BEFORE ticks.
server_cpu() { echo "{\"server_cpu_s\":$(awk -v a="$2" -v b="$(ticks "$SPID")" -v t="$TCK" 'BEGIN{print (b-a)/t}')}" > "$1"; }

sio_server() {
  case $1 in
    target-server) start_server target-server "$BIN/target-server" --bind 127.0.0.1:0 ;;
    node) start_server node node "$ROOT/interop/sio-server.mjs" --port 0 ;;
    socketioxide) start_server socketioxide "$SX" --bind 127.0.0.1:0 ;;
  esac
}

artillery_yaml() { # clients rate secs port
  local clients=$1 rate=$2 secs=$3 port=$4
  local arrival=$(( clients < 500 ? clients : 500 ))
  local ramp=$(( (clients + arrival - 1) / arrival ))
  cat <<EOF
config:
  target: "http://127.0.0.1:$port"
  phases:
    - duration: $ramp
      arrivalRate: $arrival
      maxVusers: $clients
  socketio:
    transports: ["websocket"]
scenarios:
  - name: echo with ack
    engine: socketio
    flow:
      - loop:
          - emit:
              channel: "echo"
              data: {"sb": 1, "c": 0, "s": 0, "ti": 1760000000000000000, "ts": 1760000000000000000, "p": "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}
            acknowledge: {}
          - think: "$(( 1000 / rate ))ms"
        count: $(( rate * secs ))
EOF
}

# ---- A. load generators against the Node socket.io server ----------------------------------
gen() { # tool clients secs tag
  local tool=$1 clients=$2 secs=$3 tag=$4 url
  sio_server node
  url="http://127.0.0.1:$PORT"
  case $tool in
    swarm)
      timed "$OUT/a-$tag.json" "$BIN/swarm" echo "$url" --clients "$clients" --connect-rate 500/s \
        --rate "$GEN_RATE/s" --duration "${secs}s" --quiet --json --out "$OUT/a-$tag" ;;
    node)
      timed "$OUT/a-$tag.json" node "$PEERS/node-sio-swarm.mjs" "$url" --clients "$clients" \
        --rate "$GEN_RATE" --duration "$secs" --connect-rate 500 ;;
    artillery)
      artillery_yaml "$clients" "$GEN_RATE" "$secs" "$PORT" > "$OUT/a-$tag.yml"
      timed "$OUT/a-$tag.log" "$WORK/node/node_modules/.bin/artillery" run --quiet \
        --output "$OUT/a-$tag.json" "$OUT/a-$tag.yml"
      mv "$OUT/a-$tag.log.time" "$OUT/a-$tag.json.time" ;;
  esac
  stop_server
}
for tool in swarm artillery node; do
  echo "A: $tool, $GEN_CLIENTS clients x $GEN_RATE/s x ${GEN_SECS}s against Node socket.io" >&2
  gen "$tool" "$GEN_CLIENTS" "$GEN_SECS" "$tool"
  gen "$tool" "$BASE_CLIENTS" "$BASE_SECS" "$tool-base"
done

# ---- B. servers under the same swarm load --------------------------------------------------
echo_step() { # server rate
  local server=$1 rate=$2 before
  echo "B echo: $server, $ECHO_CLIENTS clients x $rate/s" >&2
  sio_server "$server"
  before=$(ticks "$SPID")
  rm -rf "$OUT/b-echo-$server-$rate"
  timed "$OUT/b-echo-$server-$rate.json" "$BIN/swarm" echo "http://127.0.0.1:$PORT" \
    --clients "$ECHO_CLIENTS" --connect-rate 1000/s --rate "$rate/s" --duration "${ECHO_SECS}s" \
    --timeout 2s --quiet --json --out "$OUT/b-echo-$server-$rate"
  server_cpu "$OUT/b-echo-$server-$rate.cpu" "$before"
  stop_server
  node "$PEERS/table.mjs" --step echo "$OUT/b-echo-$server-$rate/results.json" \
    $(( ECHO_CLIENTS * rate * ECHO_SECS )) "$ECHO_P99_BOUND_US"
}
fan_step() { # server rate
  local server=$1 rate=$2 before
  echo "B broadcast: $server, $FAN_SUBS subscribers, one publisher at $rate/s" >&2
  sio_server "$server"
  before=$(ticks "$SPID")
  rm -rf "$OUT/b-fan-$server-$rate"
  timed "$OUT/b-fan-$server-$rate.json" "$BIN/swarm" broadcast "http://127.0.0.1:$PORT/" \
    --subscribers "$FAN_SUBS" --publishers 1 --rate "$rate/s" --duration "${FAN_SECS}s" \
    --grace 2s --quiet --json --out "$OUT/b-fan-$server-$rate"
  server_cpu "$OUT/b-fan-$server-$rate.cpu" "$before"
  stop_server
  node "$PEERS/table.mjs" --step broadcast "$OUT/b-fan-$server-$rate/results.json" 0 "$FAN_P99_BOUND_US"
}
# Each server is stepped up until a step fails twice in a row (one retry: the machine may
# be shared, and one disturbed step must not end a series); the table reads the last try.
for server in target-server node socketioxide; do
  for rate in $ECHO_RATES; do
    echo_step "$server" "$rate" || echo_step "$server" "$rate" || break
  done
  for rate in $FAN_RATES; do
    fan_step "$server" "$rate" || fan_step "$server" "$rate" || break
  done
done

# ---- C. the physical ceiling ----------------------------------------------------------------
echo "C: raw TCP echo pair vs WS echo, $CEIL_CONNS connections, closed loop" >&2
start_server tcp "$EX/ceiling" tcp-server
timed "$OUT/c-tcp.json" "$EX/ceiling" tcp "127.0.0.1:$PORT" --conns "$CEIL_CONNS" --secs "$CEIL_SECS"
stop_server
start_server target-server-ws "$BIN/target-server" --bind 127.0.0.1:0
timed "$OUT/c-ws.json" "$EX/ceiling" ws "ws://127.0.0.1:$PORT/ws/echo" --conns "$CEIL_CONNS" --secs "$CEIL_SECS"
timed "$OUT/c-swarm-ws.json" "$BIN/swarm" echo "ws://127.0.0.1:$PORT/ws/echo" --clients "$CEIL_CONNS" \
  --rate 100000/s --max-in-flight 1 --duration "${CEIL_SECS}s" --quiet --json --out "$OUT/c-swarm-ws"
stop_server
echo "done" >&2
