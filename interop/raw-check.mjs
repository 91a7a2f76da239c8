// Raw WebSocket (`ws` 8) and bare Engine.IO (the official engine.io-client 6.6) against a
// server: the ground truth for `/ws/echo`, `/ws/room/{name}` and `/engine.io/`.
//
// Usage: node raw-check.mjs URL [--checks ws-echo,ws-rooms,ws-close-codes,eio-echo]
//                               [--max-message-size BYTES] [--step-timeout-ms 5000] [--timeout-ms 60000]
// Receives: the server's http:// URL (loopback only); --max-message-size is the server's
// limit (the 1009 case sends one byte more). Emits: one JSON line per check,
// {"check":NAME,"ok":BOOL,...}, then {"done":true,"passed":N,"failed":M}. Exit code 0 when
// every check passed, 1 when one failed, 2 on bad usage, 3 on the overall timeout.
// Must not: hang (every wait is bounded), or leave connections open at exit.

import { Socket as EngineSocket } from 'engine.io-client';
import WebSocket from 'ws';
import { assertSame, exit, loopbackOnly, out, overallTimeout, parseArgs, show, sleep, usage, within } from './lib.mjs';

const ALL = ['ws-echo', 'ws-rooms', 'ws-close-codes', 'eio-echo'];
const args = parseArgs();
if (args._.length !== 1) usage(`usage: node raw-check.mjs URL [--checks ${ALL.join(',')}]`);
const url = loopbackOnly(args._[0]).replace(/\/$/, '');
const wsBase = url.replace(/^http/, 'ws');
const stepMs = Number(args['step-timeout-ms'] ?? 5000);
const maxMessage = Number(args['max-message-size'] ?? 16 << 20);
const checks = String(args.checks ?? ALL.join(',')).split(',').filter(Boolean);
const unknown = checks.filter((c) => !ALL.includes(c));
if (unknown.length) usage(`unknown checks ${unknown.join(',')}; known: ${ALL.join(',')}`);
overallTimeout(Number(args['timeout-ms'] ?? 60000), 'raw-check');

const opened = [];

/** Opens a `ws` client and queues what it receives. */
async function open(path) {
  const ws = new WebSocket(`${wsBase}${path}`, { maxPayload: maxMessage + 1024 });
  opened.push(ws);
  const inbox = [];
  const waiters = [];
  ws.on('message', (data, isBinary) => {
    const m = { data: isBinary ? Buffer.from(data) : String(data), binary: isBinary };
    const w = waiters.shift();
    if (w) w(m);
    else inbox.push(m);
  });
  ws.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: String(reason) })));
  ws.on('error', () => {}); // the close event carries the outcome
  await within(stepMs, new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('unexpected-response', (_, res) => reject(new Error(`${path}: HTTP ${res.statusCode}`)));
  }), `open ${path}`);
  ws.next = (what) => {
    if (inbox.length) return Promise.resolve(inbox.shift());
    return within(stepMs, new Promise((resolve) => waiters.push(resolve)), what);
  };
  ws.pending = () => inbox.length;
  return ws;
}

async function checkWsEcho() {
  const ws = await open('/ws/echo');
  const frames = [
    { data: 'hello ✓', binary: false },
    { data: '', binary: false },
    { data: Buffer.from([0, 1, 2, 254, 255]), binary: true },
    { data: Buffer.alloc(100_000, 9), binary: true },
  ];
  for (const f of frames) {
    ws.send(f.data, { binary: f.binary });
    const back = await ws.next(`echo of ${show(f.data).slice(0, 40)}`);
    assertSame(back, f, 'echoed frame (data and opcode)');
  }
  // A ping is answered with a pong carrying the same payload.
  const pong = new Promise((resolve) => ws.once('pong', (d) => resolve(Buffer.from(d))));
  ws.ping(Buffer.from('are-you-there'));
  assertSame(await within(stepMs, pong, 'pong'), Buffer.from('are-you-there'), 'pong payload');
  return { frames: frames.length };
}

async function checkWsRooms() {
  const room = `raw-${process.pid}-${Date.now()}`;
  const a = await open(`/ws/room/${room}`);
  const b = await open(`/ws/room/${room}`);
  const quiet = await open(`/ws/room/${room}?self=0`);
  await sleep(100); // joins are registered when the upgrade completes
  a.send('from-a');
  // Every member gets it, the sender too; `?self=0` members do not get their own.
  assertSame(await a.next('a own'), { data: 'from-a', binary: false }, 'room frame at the sender');
  assertSame(await b.next('b'), { data: 'from-a', binary: false }, 'room frame at b');
  assertSame(await quiet.next('quiet'), { data: 'from-a', binary: false }, 'room frame at the self=0 member');
  quiet.send(Buffer.from([1, 2, 3]));
  for (const [ws, name] of [[a, 'a'], [b, 'b']]) {
    assertSame(await ws.next(name), { data: Buffer.from([1, 2, 3]), binary: true }, `binary room frame at ${name}`);
  }
  await sleep(200);
  if (quiet.pending()) throw new Error('a ?self=0 member got its own frame');
  return { room };
}

async function checkWsCloseCodes() {
  const result = {};
  // Invalid UTF-8 in a text frame: 1007.
  const bad = await open('/ws/echo');
  bad.send(Buffer.from([0x41, 0xff, 0xfe]), { binary: false });
  result.invalid_utf8 = await within(stepMs, bad.closed, 'close after invalid UTF-8');
  if (result.invalid_utf8.code !== 1007) throw new Error(`invalid UTF-8 closed with ${show(result.invalid_utf8)}, expected 1007`);
  // One byte over the limit: 1009.
  const big = await open('/ws/echo');
  big.send(Buffer.alloc(maxMessage + 1, 1));
  result.too_big = await within(stepMs, big.closed, 'close after an oversized message');
  if (result.too_big.code !== 1009) throw new Error(`oversized message closed with ${show(result.too_big)}, expected 1009`);
  // A client close is answered with the same code.
  const polite = await open('/ws/echo');
  polite.close(1000, 'bye');
  result.client_close = await within(stepMs, polite.closed, 'close handshake');
  if (result.client_close.code !== 1000) throw new Error(`client close ended with ${show(result.client_close)}`);
  return result;
}

async function checkEioEcho() {
  const result = {};
  for (const transports of [['polling'], ['websocket'], ['polling', 'websocket']]) {
    const name = transports.join('+');
    const s = new EngineSocket(url, { path: '/engine.io/', transports });
    opened.push(s);
    const got = [];
    const waiters = [];
    s.on('message', (d) => {
      const m = typeof d === 'string' ? d : Buffer.from(d);
      const w = waiters.shift();
      if (w) w(m);
      else got.push(m);
    });
    await within(stepMs, new Promise((resolve, reject) => {
      s.once('open', resolve);
      s.once('error', (e) => reject(new Error(`${name}: ${e.message ?? e}`)));
    }), `${name} open`);
    const next = () => (got.length ? Promise.resolve(got.shift()) : within(stepMs, new Promise((r) => waiters.push(r)), `${name} echo`));
    // (No \x1e in the text: Engine.IO polling payloads use it as the separator, unescaped.)
    const sent = ['hello', Buffer.from([1, 2, 3, 255]), 'é ✓', Buffer.alloc(50_000, 4)];
    for (const m of sent) s.send(m);
    for (const m of sent) assertSame(await next(), m, `${name} echo (text stays text, binary stays binary)`);
    if (transports.length === 2 && s.transport.name !== 'websocket') {
      await within(stepMs, new Promise((resolve) => s.once('upgrade', resolve)), `${name} upgrade`);
    }
    result[name] = s.transport.name;
  }
  return { transports: result };
}

const RUN = {
  'ws-echo': checkWsEcho,
  'ws-rooms': checkWsRooms,
  'ws-close-codes': checkWsCloseCodes,
  'eio-echo': checkEioEcho,
};
let passed = 0;
let failed = 0;
for (const name of checks) {
  const t0 = performance.now();
  try {
    const details = await RUN[name]();
    passed++;
    out({ check: name, ok: true, ms: Math.round(performance.now() - t0), ...details });
  } catch (e) {
    failed++;
    out({ check: name, ok: false, ms: Math.round(performance.now() - t0), error: String(e?.message ?? e) });
  }
  for (const c of opened.splice(0)) {
    if (c instanceof WebSocket) c.terminate();
    else c.close();
  }
}
out({ done: true, passed, failed });
await exit(failed === 0 ? 0 : 1);
