#!/usr/bin/env bash
# CPU per acknowledged emit of the swarm and of a minimal client, side by side against one
# separately started target-server (docs/PERFORMANCE.md#send-timing has the figures).
#
# Usage: benches/cpu-per-emit.sh CLIENTS RATE SECS ROUNDS VARIANT...
#   VARIANT: `minimal` (benches/examples/minimal_load.rs: one task per Socket.IO connection
#            on tokio's timer), or NAME[:ENV=VAL[,ENV=VAL...]]: `swarm echo` with those
#            environment variables (e.g. thread:FINETIME_LOCAL=0, local,
#            spin20:FINETIME_LOCAL_SPIN_US=20).
#   The variants run one after the other, ROUNDS times, same server.
# Per run, one line: variant, acks/s (median of held seconds), CPU per acked emit in the
# held seconds (swarm: the median of its health series' cpu_percent over the median acks/s;
# minimal: its own CPU over its send window), context switches and syscalls per ack over
# the whole process (perf stat; connects included), and for the swarm service p50,
# latency p50, latency − service p50 and send_lag p50/p99 (whole run, µs).
# Needs: cargo build --release -p harness -p target-server && cargo build --release -p
# benches --example minimal_load; perf. Port 23121 on 127.0.0.1; kills only what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 5 ] || { sed -n 2,20p "$0"; exit 2; }
clients=$1 rate=$2 secs=$3 rounds=$4
shift 4
variants=("$@")

bin=$(mktemp -d)
srv=
cleanup() { [ -n "$srv" ] && kill "$srv" 2>/dev/null; rm -rf "$bin"; }
trap cleanup EXIT
cp target/release/swarm target/release/target-server "$bin/"
cp target/release/examples/minimal_load "$bin/" 2>/dev/null || true
ulimit -n "$(ulimit -Hn)"

"$bin/target-server" --bind 127.0.0.1:23121 >/dev/null 2>&1 &
srv=$!
sleep 0.5
# Connect ramp: 2,000/s (the swarm's --connect-rate, the minimal client's batches).
ramp=$(( clients / 2000 + 1 ))
echo "# $(date -u +%FT%TZ) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(git rev-parse --short HEAD): $clients x $rate/s, ${secs}s"
echo "# variant acks/s us_cpu/ack cs/ack sys/ack service_p50 latency_p50 lat-svc send_lag_p50/p99"
perfstat() { # OUT CMD...
  perf stat -x, -e context-switches,raw_syscalls:sys_enter -o "$1" -- "${@:2}"
}
perfnums() { awk -F, '/context-switches/ {c=$1} /raw_syscalls/ {s=$1} END {print c, s}' "$1"; }

for r in $(seq "$rounds"); do
  for v in "${variants[@]}"; do
    name=${v%%:*}
    envs=()
    [ "$v" != "$name" ] && IFS=, read -r -a envs <<< "${v#*:}"
    out="$bin/$name-$r"
    if [ "$name" = minimal ]; then
      perfstat "$out.perf" "$bin/minimal_load" 127.0.0.1:23121 --clients "$clients" \
        --rate "$rate" --secs "$secs" > "$out.json" 2>/dev/null || true
      read -r cs sc < <(perfnums "$out.perf")
      python3 - "$out.json" "$cs" "$sc" <<'PY'
import json, sys
m = json.load(open(sys.argv[1])); cs, sc = int(sys.argv[2]), int(sys.argv[3])
a = max(m["acked"], 1)
print(f'minimal {a/m["secs"]:.0f} {m["cpu_ms"]*1000/a:.1f} {cs/a:.2f} {sc/a:.2f} '
      f'rtt_p50={m["p50_us"]} rtt_p99={m["p99_us"]} failed={m["failed"]}')
PY
    else
      perfstat "$out.perf" env "${envs[@]}" "$bin/swarm" echo http://127.0.0.1:23121 \
        --clients "$clients" --connect-rate 2000/s --rate "$rate/s" \
        --duration "$((secs + ramp))s" --quiet --out "$out" >/dev/null 2>&1 || true
      read -r cs sc < <(perfnums "$out.perf")
      python3 - "$out/results.json" "$cs" "$sc" "$name" "$clients" <<'PY'
import json, statistics, sys
f = json.load(open(sys.argv[1])); cs, sc, name, n = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
e = f["run"]["echo"]; a = max(e["received"], 1)
held = [p for p in f["series"] if p["connected"] == n][1:-1]
hs = {h["second"]: h for h in f["health"]["series"]}
acks = statistics.median(p["received"] for p in held) if held else 0
cpu = statistics.median(hs[p["second"]]["cpu_percent"] for p in held if p["second"] in hs) if held else 0
lag = f["run"].get("send_lag") or {}
sv, lt = e["service"]["p50_us"], e["latency"]["p50_us"]
print(f'{name} {acks:.0f} {cpu/100/max(acks,1)*1e6:.1f} {cs/a:.2f} {sc/a:.2f} {sv} {lt} {lt-sv} '
      f'{lag.get("p50_us")}/{lag.get("p99_us")} saturated={f["health"]["summary"].get("saturated")} '
      f'timeouts={e["timeouts"]}')
PY
    fi
  done
done
