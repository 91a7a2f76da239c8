// A plain Node socket.io-client swarm: N clients, each emitting `echo` with an ack at a
// fixed rate, measuring every round trip. Used by the cross-check calibration test
// (harness/tests/calibration_crosscheck.rs) and by the peer comparison (run.sh).
//
// Usage: node node-sio-swarm.mjs http://127.0.0.1:PORT [--clients 10] [--rate 20]
//          [--duration 3] [--payload-size 106] [--connect-rate 500] [--timeout 10]
//          [--modules DIR]   (a folder whose node_modules has socket.io-client; default interop/)
// Receives: its options. Emits: one JSON line on stdout at the end:
//   {clients, connected, sent, acked, timeouts, duration_s, achieved_per_s, p50_us, p99_us,
//    mean_us, cpu_user_ms, cpu_system_ms, cpu_send_ms, rss_start_bytes, rss_connected_bytes,
//    rss_peak_bytes}
// Round trips are measured from the emit call to the ack callback (process.hrtime).
// Must not: reach anything outside 127.0.0.0/8, print anything else on stdout, or run past
// its duration + timeout + 30 s.

import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

function parseArgs(argv) {
  const args = { _: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) args._.push(a);
    else if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) args[a.slice(2)] = argv[++i];
    else args[a.slice(2)] = true;
  }
  return args;
}

const args = parseArgs(process.argv.slice(2));
const url = args._[0];
if (!url || !/^https?:\/\/(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?(\/|$)/.test(url)) {
  process.stdout.write(JSON.stringify({ error: 'usage: node-sio-swarm.mjs http://127.0.0.1:PORT [options] (loopback only)' }) + '\n');
  process.exit(2);
}
const clients = Number(args.clients ?? 10);
const rate = Number(args.rate ?? 20);
const duration = Number(args.duration ?? 3);
const payloadSize = Number(args['payload-size'] ?? 106);
const connectRate = Number(args['connect-rate'] ?? 500);
const timeoutS = Number(args.timeout ?? 10);
const here = fileURLToPath(new URL('.', import.meta.url));
const modules = args.modules ?? join(here, '..', '..', 'interop');
const require = createRequire(join(modules, 'package.json'));
const { io } = require('socket.io-client');

const hardStop = setTimeout(() => finish(true), (duration + timeoutS + 30) * 1000 + clients * 1000 / connectRate);
hardStop.unref();

const rssStart = process.memoryUsage().rss;
let rssPeak = rssStart;
const rssTimer = setInterval(() => { rssPeak = Math.max(rssPeak, process.memoryUsage().rss); }, 250);

// The payload object of the swarm, padded with "p" to payloadSize bytes.
function payload(c, s) {
  const now = process.hrtime.bigint().toString();
  const o = { sb: 1, c, s, ti: now, ts: now, p: '' };
  const bare = JSON.stringify(o).length;
  o.p = 'x'.repeat(Math.max(0, payloadSize - bare));
  return o;
}

const sockets = [];
let connected = 0;
let sent = 0;
let acked = 0;
const rtts = [];

function connectAll() {
  return new Promise((resolve) => {
    let started = 0;
    let settled = 0;
    const gap = 1000 / connectRate;
    const t = setInterval(() => {
      const burst = Math.max(1, Math.round(gap < 1 ? 1 / gap : 1));
      for (let k = 0; k < burst && started < clients; k++, started++) {
        const s = io(url, { transports: ['websocket'], forceNew: true, reconnection: false, timeout: timeoutS * 1000 });
        sockets.push(s);
        s.once('connect', () => { connected++; if (++settled === clients) resolve(); });
        s.once('connect_error', () => { if (++settled === clients) resolve(); });
      }
      if (started >= clients) clearInterval(t);
    }, Math.max(1, gap));
    setTimeout(resolve, clients / connectRate * 1000 + timeoutS * 1000).unref();
  });
}

function percentile(sorted, q) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

let finished = false;
let sendStart = 0n;
let sendEnd = 0n;
let cpuAtSend = null;
let cpuAtEnd = null;
let rssConnected = 0;
function finish(timedOut = false) {
  if (finished) return;
  finished = true;
  clearInterval(rssTimer);
  rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
  const cpu = process.cpuUsage();
  const sendCpu = cpuAtSend && cpuAtEnd ? (cpuAtEnd.user - cpuAtSend.user + cpuAtEnd.system - cpuAtSend.system) / 1000 : null;
  rtts.sort((a, b) => a - b);
  const secs = Number((sendEnd || process.hrtime.bigint()) - (sendStart || process.hrtime.bigint())) / 1e9;
  const mean = rtts.length ? rtts.reduce((a, b) => a + b, 0) / rtts.length : null;
  process.stdout.write(JSON.stringify({
    clients, connected, sent, acked, timeouts: sent - acked, timed_out: timedOut,
    duration_s: secs, achieved_per_s: secs > 0 ? acked / secs : 0,
    p50_us: percentile(rtts, 0.5), p99_us: percentile(rtts, 0.99), mean_us: mean,
    cpu_user_ms: cpu.user / 1000, cpu_system_ms: cpu.system / 1000, cpu_send_ms: sendCpu,
    rss_start_bytes: rssStart, rss_connected_bytes: rssConnected, rss_peak_bytes: rssPeak,
  }) + '\n', () => process.exit(0));
  for (const s of sockets) s.close();
}

await connectAll();
// Let heartbeats and allocations settle, then read the RSS of the idle, connected swarm.
await new Promise((r) => setTimeout(r, 500));
rssConnected = process.memoryUsage().rss;
const period = 1000 / rate;
const live = sockets.filter((s) => s.connected);
sendStart = process.hrtime.bigint();
cpuAtSend = process.cpuUsage();
const timers = [];
live.forEach((s, i) => {
  let seq = 0;
  const send = () => {
    const p = payload(i, seq++);
    const t0 = process.hrtime.bigint();
    sent++;
    s.emit('echo', p, () => {
      acked++;
      rtts.push(Number(process.hrtime.bigint() - t0) / 1000);
    });
  };
  // Spread the clients' first sends over one period.
  const first = setTimeout(() => { send(); timers.push(setInterval(send, period)); }, (i / Math.max(1, live.length)) * period);
  timers.push(first);
});
setTimeout(() => {
  for (const t of timers) { clearTimeout(t); clearInterval(t); }
  sendEnd = process.hrtime.bigint();
  cpuAtEnd = process.cpuUsage();
  // Wait for the last acks (bounded by the timeout).
  const deadline = Date.now() + timeoutS * 1000;
  const poll = setInterval(() => {
    if (acked >= sent || Date.now() > deadline) { clearInterval(poll); finish(); }
  }, 20);
}, duration * 1000);
