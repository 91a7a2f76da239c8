#!/usr/bin/env bash
# Broadcast fan-out on this machine: one room of N Socket.IO subscribers, one publisher,
# swarm and server on the same cores, publish rate stepped up until reach < 1.0 or
# p99 >= 100 ms. Runs against target-server and, if node is there, the Node socket.io
# server of interop/ (same steps, side by side), and prints one line per step:
#
#   server rate/s published expected delivered reach p50_ms p99_ms deliveries/s server_cpu% swarm_cpu%
#
# Usage: scripts/perf-broadcast.sh [SUBSCRIBERS] [RATES...]   (defaults: 1000, 100 ... 3000)
# Env: DURATION (default 10s), SERVERS (default "target-server node").
# Needs release builds: cargo build --release -p harness -p target-server
# Ports 23101 (target-server) and 23102 (Node) on 127.0.0.1; kills only what it started.
set -euo pipefail
cd "$(dirname "$0")/.."

subs=${1:-1000}
shift || true
rates=("$@")
[ ${#rates[@]} -gt 0 ] || rates=(100 200 300 500 700 1000 1500 2000 3000)
duration=${DURATION:-10s}
out=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$out"; }
trap cleanup EXIT

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

want=${SERVERS:-target-server node}
servers=()
if [[ " $want " == *" target-server "* ]]; then
  ./target/release/target-server --bind 127.0.0.1:23101 >/dev/null 2>&1 &
  ts=$!
  pids+=("$ts")
  servers+=("target-server:$ts:23101")
fi
if [[ " $want " == *" node "* ]] && command -v node >/dev/null && [ -d interop/node_modules ]; then
  node interop/sio-server.mjs --port 23102 >/dev/null 2>&1 &
  nd=$!
  pids+=("$nd")
  servers+=("node:$nd:23102")
fi
sleep 1
echo "# $(date -u +%FT%TZ) $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg), subscribers $subs, duration $duration"
echo "# server rate/s published expected delivered reach p50_ms p99_ms deliveries/s server_cpu% swarm_cpu%"
for s in "${servers[@]}"; do
  IFS=: read -r name pid port <<<"$s"
  for rate in "${rates[@]}"; do
    before=$(cpu_ticks "$pid")
    start=$(date +%s%N)
    ./target/release/swarm broadcast "http://127.0.0.1:$port/" --subscribers "$subs" \
      --publishers 1 --rate "$rate/s" --duration "$duration" --grace 2s --quiet \
      --out "$out/$name-$rate" >/dev/null 2>&1 || true
    wall=$(( $(date +%s%N) - start ))
    after=$(cpu_ticks "$pid")
    python3 - "$out/$name-$rate/results.json" "$name" "$rate" "$before" "$after" "$wall" <<'EOF' || break
import json, os, sys
path, name, rate, before, after, wall = sys.argv[1:]
f = json.load(open(path))
b = f["run"]["broadcast"]
hz = os.sysconf("SC_CLK_TCK")
server_cpu = (int(after) - int(before)) / hz / (int(wall) / 1e9) * 100
# Deliveries per second of publishing: the publisher sends `rate` messages per second
# from the moment its room is full until the end of the phase.
secs = b["published"] / int(rate) if b["published"] else 1
reach = b["delivered"] / b["expected"] if b["expected"] else 0
swarm_cpu = f["health"]["summary"]["cpu_percent_mean"]
ok = reach == 1.0 and b["latency"]["p99_us"] < 100_000
print(f'{name} {rate} {b["published"]} {b["expected"]} {b["delivered"]} {reach:.6f} '
      f'{b["latency"]["p50_us"]/1000:.1f} {b["latency"]["p99_us"]/1000:.1f} '
      f'{b["delivered"]/secs:.0f} {server_cpu:.0f} {swarm_cpu:.0f}' + ('' if ok else '  <- over'))
sys.exit(0 if ok else 1)
EOF
  done
done
