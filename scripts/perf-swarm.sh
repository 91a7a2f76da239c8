#!/usr/bin/env bash
# The swarm's own targets (issue 3) on this machine, swarm and target-server as separate
# processes on the same cores, one line per measurement:
#
#   idle     RSS per idle Socket.IO client (websocket): (RSS with N idle clients after
#            several pings - RSS with 10) / (N - 10), at N = 5,000 and 10,000
#   c19k     19,000 Socket.IO clients at 1 emit+ack/s each for 40 s: schedule, latency,
#            heartbeats, swarm CPU per acknowledged emit (steady state and whole run)
#   echo     1,000 clients, 106-byte payload, echo+ack at each RATE per client (default
#            100 150 200/s): round trips/s, timeouts, latency, CPU per round trip of
#            each process
#   ceiling  the same 1,000 connections as a minimal closed loop (one message in flight
#            each): raw TCP echo pair, and a minimal WebSocket client against
#            target-server /ws/echo (benches/examples/ceiling.rs)
#
# Usage: scripts/perf-swarm.sh [idle|c19k|echo|ceiling]... [RATES...]   (default: all four)
# Needs release builds: cargo build --release -p harness -p target-server -p benches --examples
# Ports 23111-23114 on 127.0.0.1; kills only what it started.
set -euo pipefail
cd "$(dirname "$0")/.."

what=()
rates=()
for a in "$@"; do
  case "$a" in
    idle|c19k|echo|ceiling) what+=("$a") ;;
    *) rates+=("$a") ;;
  esac
done
[ ${#what[@]} -gt 0 ] || what=(idle c19k echo ceiling)
[ ${#rates[@]} -gt 0 ] || rates=(100 150 200)

bin=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$bin"; }
trap cleanup EXIT
# Copies: a rebuild during the run must not change the binaries under it.
cp target/release/swarm target/release/target-server "$bin/"
[ -x target/release/examples/ceiling ] && cp target/release/examples/ceiling "$bin/"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
server() { # PORT ARGS... ; sets $srv
  "$bin/target-server" --bind "127.0.0.1:$1" "${@:2}" >/dev/null 2>&1 &
  srv=$!
  pids+=("$srv")
  sleep 0.5
}
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

echo "# $(date -u +%FT%TZ) $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg), $(git rev-parse --short HEAD)"

for w in "${what[@]}"; do
  case "$w" in
  idle)
    server 23111 --ping-interval 2s --ping-timeout 2s
    declare -A rss=()
    for n in 10 5000 10000; do
      "$bin/swarm" connect http://127.0.0.1:23111 --clients "$n" --connect-rate 2000/s \
        --duration 8s --quiet --out "$bin/idle-$n" >/dev/null 2>&1 || true
      # Each second's reading; the last complete second with every client connected, after
      # at least two pings (2 s interval): the largest RSS among the last 3 held seconds.
      rss[$n]=$(python3 - "$bin/idle-$n/results.json" "$n" <<'EOF'
import json, sys
f = json.load(open(sys.argv[1])); n = int(sys.argv[2])
conn = {p["second"]: p["connected"] for p in f["series"]}
held = [h for h in f["health"]["series"] if conn.get(h["second"], 0) >= n]
print(max(h["rss_bytes"] for h in held[-4:-1] or held))
EOF
)
      echo "idle clients=$n rss_bytes=${rss[$n]}"
    done
    for n in 5000 10000; do
      awk -v a="${rss[$n]}" -v b="${rss[10]}" -v n="$n" \
        'BEGIN { printf "idle per-client n=%d: %.2f KiB\n", n, (a - b) / (n - 10) / 1024 }'
    done
    awk -v a="${rss[10000]}" -v b="${rss[5000]}" \
      'BEGIN { printf "idle per-client slope 5000->10000: %.2f KiB\n", (a - b) / 5000 / 1024 }'
    stop "$srv"
    ;;
  c19k)
    server 23112
    t0=$(date +%s%N)
    /usr/bin/time -f "%U %S %M" -o "$bin/c19k.time" "$bin/swarm" echo http://127.0.0.1:23112 \
      --clients 19000 --connect-rate 2000/s --rate 1/s --duration 40s --quiet \
      --out "$bin/c19k" >/dev/null 2>&1 || true
    python3 - "$bin/c19k/results.json" "$bin/c19k.time" <<'EOF'
import json, statistics, sys
f = json.load(open(sys.argv[1])); user, sys_, maxrss = open(sys.argv[2]).read().split()
r = f["run"]; e = r["echo"]; lat = e["latency"]; hb = r.get("heartbeat") or {}
held = [p for p in f["series"] if p["connected"] == 19000]
hs = {h["second"]: h for h in f["health"]["series"]}
steady = [hs[p["second"]]["cpu_percent"] for p in held[1:-1] if p["second"] in hs]
sent_steady = statistics.median(p["sent"] for p in held[1:-1])
cpu = statistics.median(steady)
print(f'c19k connected={r["connect"]["connected"]} failed={r["connect"]["failed"]} '
      f'sent={e["sent"]} acked={e["received"]} timeouts={e["timeouts"]} '
      f'p50={lat["p50_us"]/1000:.2f}ms p99={lat["p99_us"]/1000:.2f}ms max={lat["max_us"]/1000:.2f}ms')
print(f'c19k steady: sent/s median={sent_steady:.0f} swarm cpu median={cpu:.1f}% '
      f'-> {cpu/100/sent_steady*1e6:.1f} us CPU per acked emit; '
      f'per-second p99 median={statistics.median(p["latency_p99_us"] for p in held[1:-1])/1000:.2f}ms '
      f'max={max(p["latency_p99_us"] for p in held[1:-1])/1000:.2f}ms')
print(f'c19k whole run: {float(user)+float(sys_):.2f}s CPU ({user} user, {sys_} sys) for '
      f'{e["received"]} acked -> {(float(user)+float(sys_))/e["received"]*1e6:.1f} us per acked emit '
      f'(connects included); max RSS {int(maxrss)/1024:.1f} MiB; '
      f'sched lag max {f["health"]["summary"]["sched_lag_max_us"]/1000:.1f}ms; '
      f'pings answered={hb.get("pings", "?")} client-side timeouts={hb.get("client_timeouts", "?")} '
      f'false timeouts={hb.get("false_timeouts", "?")}')
EOF
    stop "$srv"
    ;;
  echo)
    server 23113
    echo "# echo rate/s/client round_trips/s timeouts latency_p50/p99_ms service_p50/p99_ms swarm_us/rt server_us/rt swarm_cpu% server_cpu% saturated"
    for rate in "${rates[@]}"; do
      before=$(cpu_ticks "$srv")
      /usr/bin/time -f "%U %S" -o "$bin/echo-$rate.time" "$bin/swarm" echo http://127.0.0.1:23113 \
        --clients 1000 --connect-rate 5000/s --rate "$rate/s" --duration 15s --quiet \
        --out "$bin/echo-$rate" >/dev/null 2>&1 || true
      after=$(cpu_ticks "$srv")
      python3 - "$bin/echo-$rate/results.json" "$bin/echo-$rate.time" "$rate" "$before" "$after" <<'EOF'
import json, os, statistics, sys
path, tpath, rate, before, after = sys.argv[1:]
f = json.load(open(path)); user, sys_ = map(float, open(tpath).read().split())
e = f["run"]["echo"]; l = e["latency"]; s = e["service"]
held = [p for p in f["series"] if p["connected"] == 1000][1:-1]
rts = statistics.median(p["received"] for p in held) if held else 0
wall = (f["meta"]["ended_at_unix_ms"] - f["meta"]["started_at_unix_ms"]) / 1000
hz = os.sysconf("SC_CLK_TCK"); srv = (int(after) - int(before)) / hz
n = max(e["received"], 1)
sat = f["health"]["summary"].get("saturated")
print(f'echo {rate} {rts:.0f} {e["timeouts"]} {l["p50_us"]/1000:.2f}/{l["p99_us"]/1000:.2f} '
      f'{s["p50_us"]/1000:.2f}/{s["p99_us"]/1000:.2f} {(user+sys_)/n*1e6:.2f} {srv/n*1e6:.2f} '
      f'{(user+sys_)/wall*100:.0f} {srv/wall*100:.0f} {sat}')
EOF
    done
    stop "$srv"
    ;;
  ceiling)
    if [ ! -x "$bin/ceiling" ]; then
      echo "ceiling: build it first: cargo build --release -p benches --examples"
      continue
    fi
    "$bin/ceiling" tcp-server --bind 127.0.0.1:23114 >"$bin/tcp.out" 2>&1 &
    tcp=$!
    pids+=("$tcp")
    sleep 0.5
    echo "ceiling tcp $("$bin/ceiling" tcp 127.0.0.1:23114 --conns 1000 --secs 10)"
    stop "$tcp"
    server 23115
    echo "ceiling ws $("$bin/ceiling" ws ws://127.0.0.1:23115/ws/echo --conns 1000 --secs 10)"
    stop "$srv"
    ;;
  esac
done
