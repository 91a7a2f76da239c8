#!/usr/bin/env bash
# Scale-out benchmark (issue 13; results in docs/PERFORMANCE.md, "Scale-out"):
#
#   [RAMP_RATE=1000] scripts/bench-scale-out.sh [--clients N] [--workers W] [--hold SECS] [--skip-ceiling]
#
# A. N concurrent Socket.IO clients (default 100,000) on this one machine: W swarm worker
#    processes (default 7, `--procs W`) against W `target-server --reuse-port` processes on one
#    port, every client connected (at RAMP_RATE a second, default 2,000), held HOLD s (default 60) while the server pings every 5 s
#    (5 s timeout) and every client emits + waits for its ack at 0.2/s. Reports false
#    heartbeat timeouts (server-side ping-timeout closes), echo timeouts, connect and echo p99
#    from the merged histograms, RSS per client over all workers, the coordinator's CPU per
#    worker.
# B. The ceiling: one echo load that saturates one swarm process, run with --procs 1 and
#    --procs 2 (each process --threads 1), against 2 reuse-port servers: the achieved
#    replies/s of each.
#
# Needs: the release build (made here), a hard open-file limit of at least N/W + 1,000 per
# process (20,000 on these machines), ~3 GiB of memory for 100k clients. Traffic stays on
# 127.0.0.0/8. Everything it starts it stops by PID. Raw results stay in the run folder.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CLIENTS=100000 WORKERS=7 HOLD=60 CEILING=1
while [ $# -gt 0 ]; do
  case "$1" in
    --clients) CLIENTS=$2; shift 2 ;;
    --workers) WORKERS=$2; shift 2 ;;
    --hold) HOLD=$2; shift 2 ;;
    --skip-ceiling) CEILING=0; shift ;;
    -h|--help) sed -n 2,20p "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET_DIR/release
OUT=${OUT:-$ROOT/target/bench-scale-out/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
echo "results in $OUT"

cargo build --release --locked -p harness -p target-server >&2

PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# A free port below 32768 (the ephemeral range starts above it, so no client takes it).
free_port() {
  python3 - <<'PY'
import random, socket
for _ in range(200):
    p = random.randint(20000, 32000)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); s.close(); print(p); break
    except OSError:
        s.close()
PY
}

# start_servers N PORT ARGS...: N reuse-port target-servers on 127.0.0.1:PORT.
start_servers() {
  local n=$1 port=$2; shift 2
  for _ in $(seq "$n"); do
    "$BIN/target-server" --bind "127.0.0.1:$port" --reuse-port --log warn "$@" \
      >>"$OUT/servers.log" 2>&1 &
    PIDS+=("$!")
  done
  for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$port/stats.json" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "the servers did not come up on $port" >&2; exit 1
}

# Sum of the server side's ping-timeout closes over every process behind PORT (asks until
# every pid answered; each process is its own world).
server_ping_timeouts() {
  python3 - "$1" "$2" <<'PY'
import json, sys, urllib.request
port, want = sys.argv[1], int(sys.argv[2])
seen = {}
for _ in range(2000):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats.json", timeout=5) as r:
        s = json.load(r)
    seen[s["pid"]] = s
    if len(seen) >= want:
        break
tot = 0
for s in seen.values():
    closes = s.get("closes", {})
    tot += sum(v for k, v in closes.items() if "ping" in k)
print(f"{tot} {len(seen)}")
PY
}

cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }

# ---- A. N clients, held ----
PORT=$(free_port)
start_servers "$WORKERS" "$PORT" --ping-interval 5s --ping-timeout 5s --max-connections 1m
RAMP_RATE=${RAMP_RATE:-2000}
cat >"$OUT/hold.toml" <<TOML
source-addrs = "auto"
timeout = "10s"

[[phase]]
name = "ramp"
scenario = "connect"
clients = $CLIENTS
connect-rate = "$RAMP_RATE/s"
duration = "5s"

[[phase]]
name = "hold"
scenario = "echo"
clients = $CLIENTS
duration = "${HOLD}s"
rate = "0.2/s"
TOML
"$BIN/swarm" run "$OUT/hold.toml" --url "http://127.0.0.1:$PORT" --procs "$WORKERS" \
  --quiet --out "$OUT/hold" >"$OUT/hold.stdout" 2>"$OUT/hold.stderr" &
COORD=$!
PIDS+=("$COORD")
WALL0=$(date +%s.%N)
# The coordinator's own CPU (its workers are separate processes): its last reading.
( while t=$(cpu_ticks "$COORD" 2>/dev/null); do echo "$t" >"$OUT/coordinator.ticks"; sleep 1; done ) &
wait "$COORD" || echo "swarm exited $? (see $OUT/hold.stderr)" >&2
WALL1=$(date +%s.%N)
read -r PING_CLOSES PROCS_SEEN < <(server_ping_timeouts "$PORT" "$WORKERS")
COORD_CPU=$(python3 -c "import os;print(int(open('$OUT/coordinator.ticks').read())/os.sysconf('SC_CLK_TCK'))")
cleanup; PIDS=()
python3 - "$OUT/hold/results.json" "$PING_CLOSES" "$PROCS_SEEN" "$WALL0" "$WALL1" "$COORD_CPU" <<'PY' | tee "$OUT/hold.md"
import json, sys
r = json.load(open(sys.argv[1]))
ping_closes, procs, w0, w1 = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
coord = float(sys.argv[6])
run = r["run"]; c = run["connect"]; e = run.get("echo") or {}
ws = r.get("workers", [])
rss = sum(w["peak_rss_bytes"] for w in ws)
clients = sum(w["clients"] for w in ws)
print(f"| clients | {clients:,} over {len(ws)} workers ({r['meta']['status']}) |")
print(f"| connected / failed | {c['connected']:,} / {c['failed']:,} |")
print(f"| disconnects other than the swarm's own close | {sum(v for k, v in run.get('disconnects', {}).items() if k != 'client_close')} {dict((k, v) for k, v in run.get('disconnects', {}).items() if k != 'client_close')} |")
print(f"| server ping-timeout closes (all {procs} processes) | {ping_closes} |")
print(f"| echo sent / received / timeouts | {e.get('sent',0):,} / {e.get('received',0):,} / {e.get('timeouts',0):,} |")
tot = c.get("phases", {}).get("total")
print(f"| connect total p50 / p99 (merged) | {tot['p50_us']/1000:.1f} / {tot['p99_us']/1000:.1f} ms |" if tot else "| connect p99 | - |")
lat = e.get("latency") or {}
print(f"| echo latency p50 / p99 (merged) | {lat.get('p50_us',0)/1000:.2f} / {lat.get('p99_us',0)/1000:.2f} ms |")
print(f"| peak RSS, all workers | {rss/2**20:.0f} MiB = {rss/max(clients,1)/1024:.2f} KiB per client |")
print(f"| workers' CPU | {sum(w['cpu_seconds'] for w in ws):.1f} s over {w1-w0:.0f} s |")
print(f"| saturated workers | {[w['index'] for w in ws if w['saturated']]} |")
print(f"| coordinator CPU | {coord:.1f} s over {w1-w0:.0f} s = {100*coord/(w1-w0)/max(len(ws),1):.2f}% of a core per worker |")
PY

[ "$CEILING" = 1 ] || exit 0
# ---- B. the ceiling, 1 vs 2 worker processes ----
PORT=$(free_port)
start_servers 2 "$PORT"
for procs in 1 2; do
  "$BIN/swarm" --threads 1 echo "http://127.0.0.1:$PORT" --clients 2000 --rate 50/s \
    --duration 10s --procs "$procs" --quiet --out "$OUT/ceiling-$procs" \
    >"$OUT/ceiling-$procs.stdout" 2>&1 || true
done
cleanup; PIDS=()
python3 - "$OUT" <<'PY' | tee "$OUT/ceiling.md"
import json, sys
for procs in (1, 2):
    r = json.load(open(f"{sys.argv[1]}/ceiling-{procs}/results.json"))
    e = r["run"]["echo"]; secs = max(1, (r["run"]["end_offset_ms"] - r["run"]["start_offset_ms"]) / 1000)
    sat = r["health"]["summary"]["saturated"]
    print(f"| --procs {procs} | asked 100,000/s | received {e['received']/secs:,.0f}/s | p99 {e['latency']['p99_us']/1000:.1f} ms | saturated {sat} |")
PY
