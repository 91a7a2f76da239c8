#!/usr/bin/env bash
# Capacity searches (`swarm capacity`, docs/PERFORMANCE.md#capacity) against target-server
# and the Node socket.io server of interop/ (interop/sio-server.mjs), swarm and server on
# this machine's cores:
#
#   1. echo with ack, 1,000 Socket.IO clients, --vary rate,
#      SLOs echo.latency.p99 < 50ms and echo.timeouts == 0
#   2. broadcast to 1,000 subscribers in one room, one publisher, --vary publish-rate,
#      SLOs broadcast.reach >= 1 and broadcast.latency.p99 < 100ms
#   3. (scenario "subscribers") broadcast from one publisher at 20/s into one room,
#      --vary clients: how many subscribers the room holds, from 250 up to 10,000, with the
#      same SLOs
#   4. (scenario "connect") --scenario connect --vary clients from 1,000 up to 15,000 at
#      2,000 connects/s, the default SLOs (connect.failed == 0, connect.total.p99 < 1s): how
#      many connections the server holds while the last ones connect in time
#
# (the same SLOs as the stepped figures of docs/PERFORMANCE.md#peer-comparison-benchespeersrunsh).
# Prints, per search: the command, the capacity, the steps, the wall time; the capacity
# table of each search is kept in $OUT/<server>-<scenario>/.
#
# Not part of CI. Usage: scripts/bench-capacity.sh
# Env: BIN (folder of swarm and target-server, default target/release), STEP (measured
#      window, default 5s), WARMUP (default 2s), PRECISION (default 10%), SERVERS (default
#      "target-server node"), SCENARIOS (default "echo broadcast";
#      also "subscribers" and "connect"), OUT (default a temp
#      folder, removed at the end).
# Needs: cargo build --release -p harness -p target-server (or BIN=target/ci after a
#        --profile ci build); node and `npm ci` in interop/ for the Node server.
# Ports 23111 (target-server) and 23112 (Node) on 127.0.0.1; kills only what it started.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${BIN:-target/release}
step=${STEP:-5s}
warmup=${WARMUP:-2s}
precision=${PRECISION:-10%}
want=${SERVERS:-target-server node}
scenarios=${SCENARIOS:-echo broadcast}
keep=${OUT:-}
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -n "$keep" ] || rm -rf "$out"
}
trap cleanup EXIT

for b in swarm target-server; do
  [ -x "$bin/$b" ] || { echo "no $bin/$b: build it first (see the header)" >&2; exit 2; }
done

# The servers may hold as many connections as the machine allows a process.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
servers=()
if [[ " $want " == *" target-server "* ]]; then
  "$bin/target-server" --bind 127.0.0.1:23111 >/dev/null 2>&1 &
  pids+=("$!")
  servers+=("target-server:23111")
fi
if [[ " $want " == *" node "* ]]; then
  if command -v node >/dev/null && [ -d interop/node_modules ]; then
    node interop/sio-server.mjs --port 23112 >/dev/null 2>&1 &
    pids+=("$!")
    servers+=("node:23112")
  else
    echo "# node or interop/node_modules missing: the Node server is skipped" >&2
  fi
fi
sleep 1

echo "# $(date -u +%FT%TZ) $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg); step $step, warm-up $warmup, precision $precision"
for s in "${servers[@]}"; do
  IFS=: read -r name port <<<"$s"
  url="http://127.0.0.1:$port"
  for scenario in $scenarios; do
    if [ "$scenario" = echo ]; then
      args=(--scenario echo --vary rate --clients 1000 --from 5000/s
            --slo 'echo.latency.p99 < 50ms' --slo 'echo.timeouts == 0')
    elif [ "$scenario" = connect ]; then
      args=(--scenario connect --vary clients --from 1000 --max 15000)
    elif [ "$scenario" = subscribers ]; then
      args=(--scenario broadcast --vary clients --publishers 1 --rate 20/s --from 250
            --max 10000 --slo 'broadcast.reach >= 1' --slo 'broadcast.latency.p99 < 100ms')
    else
      args=(--scenario broadcast --vary publish-rate --subscribers 1000 --publishers 1
            --from 20/s --slo 'broadcast.reach >= 1' --slo 'broadcast.latency.p99 < 100ms')
    fi
    dir="$out/$name-$scenario"
    cmd=("$bin/swarm" capacity "$url" "${args[@]}" --step-duration "$step" --warmup "$warmup"
         --precision "$precision" --connect-rate 2000/s --quiet --out "$dir")
    echo
    echo "## $name $scenario"
    echo "\$ ${cmd[*]}"
    start=$(date +%s%N)
    code=0
    "${cmd[@]}" >"$out/$name-$scenario.txt" 2>&1 || code=$?
    wall=$(( ($(date +%s%N) - start) / 1000000 ))
    cat "$out/$name-$scenario.txt"
    echo "# exit $code, wall time $((wall / 1000)).$((wall % 1000 / 100)) s"
  done
done
