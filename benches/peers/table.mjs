// Turns one run folder of benches/peers/run.sh into the Markdown table of
// docs/PERFORMANCE.md.
//
// Usage: node table.mjs RUN_DIR
// Receives: the raw results run.sh left in RUN_DIR (settings.json, a-*, b-*, c-* files).
// Emits: Markdown on stdout. Must not: invent a number: a missing or failed measurement is
// printed as "n/a" with the reason when known.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

// Pass criteria of one step, shared by the table and by run.sh (which stops stepping up a
// server at its first failing step).
// Echo: every message answered in time (sent also counts the sends made during the
// connect ramp, so it is at least clients x rate x secs when the swarm kept its schedule).
const echoPasses = (e, offered, bound) =>
  e.timeouts === 0 && e.unanswered_at_stop === 0 && e.sent >= 0.98 * offered && e.latency.p99_us <= bound;
// Round trips per second in the steady part of a run: the median of the per-second series
// once every client is connected (first 2 and last second left out).
const steadyPerS = (r) => {
  const pts = (r.series ?? []).filter((x) => x.sent > 0).map((x) => x.received);
  const mid = pts.slice(2, -1).sort((a, b) => a - b);
  return mid.length ? mid[Math.floor(mid.length / 2)] : null;
};
const fanPasses = (b, bound) => b.expected > 0 && b.delivered === b.expected && b.latency.p99_us <= bound;

// `node table.mjs --step echo|broadcast RESULTS_JSON OFFERED BOUND_US`: exit 0 if it passed.
if (process.argv[2] === '--step') {
  const [, , , kind, file, offered, bound] = process.argv;
  try {
    const r = JSON.parse(readFileSync(file, 'utf8'));
    const ok = kind === 'echo' ? echoPasses(r.run.echo, Number(offered), Number(bound)) : fanPasses(r.run.broadcast, Number(bound));
    process.exit(ok ? 0 : 1);
  } catch {
    process.exit(1);
  }
}
const dir = process.argv[2];
if (!dir) {
  console.error('usage: node table.mjs RUN_DIR | --step echo|broadcast RESULTS_JSON OFFERED BOUND_US');
  process.exit(2);
}
const read = (name) => {
  const p = join(dir, name);
  if (!existsSync(p)) return null;
  try {
    const text = readFileSync(p, 'utf8').trim();
    try {
      return JSON.parse(text);
    } catch {
      return JSON.parse(text.split('\n').filter((l) => l.startsWith('{')).pop() ?? text);
    }
  } catch {
    return null;
  }
};
const s = read('settings.json') ?? {};
const isolation = existsSync(join(dir, 'isolation')) ? readFileSync(join(dir, 'isolation'), 'utf8').trim() : '?';
const fmt = (v, digits = 0) => (v === null || v === undefined || Number.isNaN(v) ? 'n/a' : Number(v).toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }));
const ms = (us) => (us === null || us === undefined ? 'n/a' : `${fmt(us / 1000, 2)} ms`);
const cpu = (t) => (t ? t.user_s + t.sys_s : null);
const out = [];
const p = (line = '') => out.push(line);

p(`Run of ${s.date ?? '?'}${s.quick ? ' (--quick: smoke run, not for publication)' : ''}: ${s.cores} cores (${s.cpu}), ` +
  `${fmt((s.mem_kb ?? 0) / 1048576, 1)} GiB, Linux ${s.kernel}, Node ${s.node}, Artillery ${s.artillery}; ` +
  `${isolation === 'netns' ? 'inside a private network namespace (unshare -n)' : 'on 127.0.0.1 (no private namespace)'}. ` +
  'Every tool and server shares the same cores.');
p();

// ---- A ----
p(`### A. Load generators: ${s.gen_clients} clients x ${s.gen_rate} emit+ack/s for ${s.gen_secs} s against the Node socket.io 4.8 server`);
p();
p('| generator | clients held | achieved emits/s | p50 | p99 | CPU ms per 1,000 emits | RSS per client |');
p('|---|---|---|---|---|---|---|');
const rssPerClient = (tag) => {
  const a = read(`a-${tag}.json.time`);
  const b = read(`a-${tag}-base.json.time`);
  if (!a || !b) return null;
  return (a.maxrss_kb - b.maxrss_kb) / (s.gen_clients - s.base_clients);
};
const genRows = {};
{
  const r = read('a-swarm/results.json');
  const t = read('a-swarm.json.time');
  const e = r?.run?.echo;
  if (e) {
    const row = {
      held: r.run.connect.peak_connected, perS: e.received / s.gen_secs,
      p50: e.service.p50_us, p99: e.service.p99_us, lat50: e.latency.p50_us, lat99: e.latency.p99_us,
      cpuPer1k: cpu(t) / (e.sent / 1000) * 1000, rss: rssPerClient('swarm'), sat: r.health?.summary?.saturated,
    };
    genRows.swarm = row;
    p(`| swarm | ${fmt(row.held)} | ${fmt(row.perS)} | ${ms(row.p50)} | ${ms(row.p99)} | ${fmt(row.cpuPer1k, 1)} | ${fmt(row.rss, 1)} KiB |`);
  } else p('| swarm | n/a (no results.json) | | | | | |');
}
{
  const r = read('a-artillery.json');
  const t = read('a-artillery.json.time');
  const agg = r?.aggregate;
  if (agg) {
    const c = agg.counters ?? {};
    const rt = agg.summaries?.['socketio.response_time'] ?? {};
    const emits = c['socketio.emit'] ?? 0;
    // Artillery's counters carry no send window; each virtual user runs its whole loop in
    // one session, so the aggregate rate is emits / mean session length.
    const session = (agg.summaries?.['vusers.session_length']?.mean ?? 0) / 1000;
    const held = (c['vusers.created'] ?? 0) - (c['vusers.failed'] ?? 0);
    const row = { held, perS: session > 0 ? emits / session : null, p50: rt.p50 * 1000, p99: rt.p99 * 1000, cpuPer1k: cpu(t) / (emits / 1000) * 1000, rss: rssPerClient('artillery') };
    genRows.artillery = row;
    p(`| Artillery ${s.artillery} (socketio engine) | ${fmt(row.held)} | ${fmt(row.perS)} | ${ms(row.p50)} | ${ms(row.p99)} | ${fmt(row.cpuPer1k, 1)} | ${fmt(row.rss, 1)} KiB |`);
  } else p('| Artillery | n/a (no report) | | | | | |');
}
{
  const r = read('a-node.json');
  const t = read('a-node.json.time');
  if (r && r.sent !== undefined) {
    const row = { held: r.connected, perS: r.achieved_per_s, p50: r.p50_us, p99: r.p99_us, cpuPer1k: cpu(t) / (r.sent / 1000) * 1000, rss: rssPerClient('node') };
    genRows.node = row;
    p(`| Node socket.io-client 4.8 swarm | ${fmt(row.held)} | ${fmt(row.perS)} | ${ms(row.p50)} | ${ms(row.p99)} | ${fmt(row.cpuPer1k, 1)} | ${fmt(row.rss, 1)} KiB |`);
  } else p('| Node socket.io-client | n/a | | | | | |');
}
p();
if (genRows.swarm) {
  const ratio = (k) => (genRows[k] ? `${fmt(genRows[k].cpuPer1k / genRows.swarm.cpuPer1k, 1)}x` : 'n/a');
  p(`Ratios: generator CPU per emit relative to the swarm: Artillery ${ratio('artillery')}, Node socket.io-client ${ratio('node')}. ` +
    `p50/p99 are from each tool's actual emit to its ack; the swarm's latency from the intended send instant was ` +
    `${ms(genRows.swarm.lat50)} / ${ms(genRows.swarm.lat99)}. CPU is the whole process (user + system, connects included) ` +
    `over its emits. RSS per client = (peak RSS at ${s.gen_clients} clients - peak RSS at ${s.base_clients}) / ${s.gen_clients - s.base_clients}.` +
    (genRows.swarm.sat ? ' The swarm flagged itself as saturated during this run.' : ''));
  p();
}

// ---- B ----
const servers = [['target-server', 'target-server'], ['node', 'Node socket.io 4.8'], ['socketioxide', 'socketioxide 0.18']];
const steps = (prefix) => {
  const rates = new Set();
  const files = readdirSafe(dir).filter((f) => f.startsWith(prefix) && f.endsWith('.json') && !f.endsWith('.time'));
  for (const f of files) rates.add(Number(f.slice(prefix.length, -5)));
  return [...rates].filter((r) => !Number.isNaN(r)).sort((a, b) => a - b);
};
function readdirSafe(d) {
  try {
    return readdirSync(d);
  } catch {
    return [];
  }
}

p(`### B. Servers under the same swarm load (${s.echo_clients} Socket.IO clients, websocket)`);
p();
p(`Echo with ack: the highest offered step (${s.echo_clients} clients x rate, ${s.echo_secs} s each after a 1 s connect ramp) ` +
  `in which every message was answered in time, the schedule was kept and latency p99 (from the intended send) <= ${ms(s.echo_p99_bound_us)}; ` +
  'round trips/s is the median per-second count once all clients are connected.');
p();
p('| server | round trips/s at the bound | vs Node | p50 | p99 | server CPU ms per 1,000 round trips | first step past the bound | swarm saturated at the bound |');
p('|---|---|---|---|---|---|---|---|');
const echoBest = {};
for (const [key, name] of servers) {
  let best = null;
  let failed = null;
  for (const rate of steps(`b-echo-${key}-`)) {
    const r = read(`b-echo-${key}-${rate}/results.json`);
    const c = read(`b-echo-${key}-${rate}.cpu`);
    const e = r?.run?.echo;
    if (!e) { failed ??= `${rate}/s: no results`; continue; }
    const offered = s.echo_clients * rate * s.echo_secs;
    const ok = echoPasses(e, offered, s.echo_p99_bound_us);
    if (ok && !failed) best = { sat: r.health?.summary?.saturated ? 'yes' : 'no', rate, perS: steadyPerS(r), p50: e.latency.p50_us, p99: e.latency.p99_us, cpu: c ? c.server_cpu_s / (e.received / 1000) * 1000 : null };
    else if (!ok && !failed) failed = `${fmt(s.echo_clients * rate)}/s offered: p99 ${ms(e.latency.p99_us)}, ${e.timeouts} timeouts, ${fmt(steadyPerS(r))}/s${r.health?.summary?.saturated ? ' (swarm saturated)' : ''}`;
  }
  echoBest[key] = best;
  p(`| ${name} | ${best ? fmt(best.perS) : 'n/a'} | VS_${key} | ${best ? ms(best.p50) : 'n/a'} | ${best ? ms(best.p99) : 'n/a'} | ${best ? fmt(best.cpu, 1) : 'n/a'} | ${failed ?? 'none (highest step passed)'} | ${best?.sat ?? 'n/a'} |`);
}
const fixVs = (best) => {
  for (const [key] of servers) {
    const i = out.findIndex((l) => l.includes(`VS_${key}`));
    if (i < 0) continue;
    const r = best[key] && best.node ? `${fmt(best[key].perS / best.node.perS, 2)}x` : 'n/a';
    out[i] = out[i].replace(`VS_${key}`, r);
  }
};
fixVs(echoBest);
p();
p(`Broadcast: ${s.fan_subs} subscribers in one room, one publisher at a fixed rate (\`swarm broadcast\`, ${s.fan_secs} s ` +
  'per step); the highest step with reach 1.0 and fan-out p99 <= ' + `${ms(s.fan_p99_bound_us)}; deliveries/s = delivered / (published / rate).`);
p();
p('| server | deliveries/s at the bound | vs Node | p50 | p99 | server CPU ms per 1,000 deliveries | first step past the bound | swarm saturated at the bound |');
p('|---|---|---|---|---|---|---|---|');
const fanBest = {};
for (const [key, name] of servers) {
  let best = null;
  let failed = null;
  for (const rate of steps(`b-fan-${key}-`)) {
    const r = read(`b-fan-${key}-${rate}/results.json`);
    const c = read(`b-fan-${key}-${rate}.cpu`);
    const b = r?.run?.broadcast;
    if (!b) { failed ??= `${rate}/s: no results`; continue; }
    const reach = b.expected ? b.delivered / b.expected : 0;
    const secs = b.published ? b.published / rate : 1;
    const ok = fanPasses(b, s.fan_p99_bound_us);
    if (ok && !failed) best = { sat: r.health?.summary?.saturated ? 'yes' : 'no', perS: b.delivered / secs, p50: b.latency.p50_us, p99: b.latency.p99_us, cpu: c ? c.server_cpu_s / (b.delivered / 1000) * 1000 : null };
    else if (!ok && !failed) failed = `${rate} publishes/s: reach ${fmt(reach, 4)}, p99 ${ms(b.latency.p99_us)}, ${fmt(b.delivered / secs)}/s${r.health?.summary?.saturated ? ' (swarm saturated)' : ''}`;
  }
  fanBest[key] = best;
  p(`| ${name} | ${best ? fmt(best.perS) : 'n/a'} | VS_${key} | ${best ? ms(best.p50) : 'n/a'} | ${best ? ms(best.p99) : 'n/a'} | ${best ? fmt(best.cpu, 1) : 'n/a'} | ${failed ?? 'none (highest step passed)'} | ${best?.sat ?? 'n/a'} |`);
}
fixVs(fanBest);
p();

// ---- C ----
p(`### C. The physical ceiling: ${s.ceil_conns} connections, one 106-byte message in flight each, ${s.ceil_secs} s`);
p();
const tcp = read('c-tcp.json');
const ws = read('c-ws.json');
const sw = read('c-swarm-ws/results.json');
p('| echo | round trips/s | p50 | p99 | fraction of raw TCP |');
p('|---|---|---|---|---|');
const frac = (v) => (tcp && v ? `${fmt(v / tcp.per_s, 2)}` : 'n/a');
p(`| raw TCP echo pair (tokio, examples/ceiling.rs) | ${fmt(tcp?.per_s)} | ${tcp ? `${tcp.p50_us} µs` : 'n/a'} | ${tcp ? `${tcp.p99_us} µs` : 'n/a'} | 1.00 |`);
p(`| target-server /ws/echo, minimal tungstenite client | ${fmt(ws?.per_s)} | ${ws ? `${ws.p50_us} µs` : 'n/a'} | ${ws ? `${ws.p99_us} µs` : 'n/a'} | ${frac(ws?.per_s)} |`);
const swe = sw?.run?.echo;
const swPerS = swe ? swe.received / s.ceil_secs : null;
p(`| target-server /ws/echo, swarm (--max-in-flight 1, flat out) | ${fmt(swPerS)} | ${swe ? `${swe.service.p50_us} µs` : 'n/a'} | ${swe ? `${swe.service.p99_us} µs` : 'n/a'} | ${frac(swPerS)} |`);
p();
p('Ratios are marked "x" (relative to the named reference) or "fraction"; every other figure is measured as shown.');
console.log(out.join('\n'));
