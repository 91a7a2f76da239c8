// The connect and disconnect cases of the socket.io-protocol test suite, driven the way that
// suite drives them: a `ws` 8.5 client (the version its lockfile pins, aliased here as
// `ws85`) and one one-shot listener per expected frame, attached only after the previous
// wait resolved.
//
// Why this client and not another: `ws` 8.5 hands every frame of one TCP read to the
// `message` listeners synchronously, one after the other, and a promise continuation runs
// only after that. When a server writes the CONNECT reply and the next packet (the preset's
// `auth` emit) in one write, both frames arrive in one read, the second is dispatched while
// no listener is attached yet, and it is lost: the next wait sees the following packet
// (a ping, `2`) instead. Clients that queue frames never notice; this one does.
//
// Usage: node sio-suite-check.mjs URL [--rounds 1] [--case-timeout-ms 2000] [--timeout-ms 60000]
// Receives: the URL of a server in the conformance preset (namespaces / and /custom, the
// `auth` emit on connect, `message` -> `message-back`, pingInterval 300 ms), loopback only.
// Emits: one JSON line per case and round, {"check":NAME,"round":R,"ok":true,"ms":..} or
// {"check":NAME,"round":R,"ok":false,"error":".."}, then {"done":true,"passed":N,"failed":M}.
// Exit code 0 when every case passed, 1 when one failed, 2 on bad usage, 3 on the overall
// timeout. Must not: hang (every case is bounded), or leave sockets open at exit.

import WebSocket from 'ws85';
import { exit, loopbackOnly, out, overallTimeout, parseArgs, usage, within } from './lib.mjs';

const args = parseArgs();
if (args._.length !== 1) usage('usage: node sio-suite-check.mjs URL [--rounds N]');
const base = new URL(loopbackOnly(args._[0]));
const wsUrl = `ws://${base.host}/socket.io/?EIO=4&transport=websocket`;
const rounds = Number(args.rounds ?? 1);
const caseMs = Number(args['case-timeout-ms'] ?? 2000);
if (!Number.isInteger(rounds) || rounds < 1 || rounds > 1000) usage('--rounds must be 1..1000');
overallTimeout(Number(args['timeout-ms'] ?? 60000), 'sio-suite-check');

const opened = [];

function open() {
  const socket = new WebSocket(wsUrl);
  socket.on('error', () => {});
  opened.push(socket);
  return socket;
}

/** One-shot wait for the next `type` event, as the suite writes it. */
function waitFor(socket, type) {
  return new Promise((resolve) => socket.addEventListener(type, resolve, { once: true }));
}

/** Waits for the next text frame and returns it. */
async function nextText(socket) {
  const { data } = await waitFor(socket, 'message');
  return typeof data === 'string' ? data : `<binary ${data.length} bytes>`;
}

function expectEq(actual, expected, what) {
  if (actual !== expected) throw new Error(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
}

/** `40[<nsp>,]{"sid":".."}`: exactly one key, a string. */
function expectConnectReply(data, prefix) {
  if (!data.startsWith(prefix)) throw new Error(`CONNECT reply: expected ${prefix}..., got ${JSON.stringify(data)}`);
  let body;
  try {
    body = JSON.parse(data.slice(prefix.length));
  } catch {
    throw new Error(`CONNECT reply: not JSON after ${prefix}: ${JSON.stringify(data)}`);
  }
  const keys = Object.keys(body ?? {});
  if (keys.length !== 1 || keys[0] !== 'sid' || typeof body.sid !== 'string') {
    throw new Error(`CONNECT reply: expected exactly {"sid":string}, got ${JSON.stringify(data)}`);
  }
}

/** Opens, connects `connect` (e.g. `40`), checks the reply and then the auth emit. */
async function connectCase(connect, replyPrefix, auth) {
  const socket = open();
  await waitFor(socket, 'message'); // Engine.IO open packet
  socket.send(connect);
  expectConnectReply(await nextText(socket), replyPrefix);
  expectEq(await nextText(socket), auth, 'auth packet after the CONNECT reply');
  return socket;
}

const CASES = {
  connect_main: () => connectCase('40', '40', '42["auth",{}]'),
  connect_main_with_payload: () => connectCase('40{"token":"123"}', '40', '42["auth",{"token":"123"}]'),
  connect_custom: () => connectCase('40/custom,', '40/custom,', '42/custom,["auth",{}]'),
  connect_custom_with_payload: () =>
    connectCase('40/custom,{"token":"abc"}', '40/custom,', '42/custom,["auth",{"token":"abc"}]'),
  disconnect_main: async () => {
    const socket = await connectCase('40', '40', '42["auth",{}]');
    socket.send('41');
    await waitFor(socket, 'close');
  },
  connect_then_disconnect_custom: async () => {
    const socket = await connectCase('40', '40', '42["auth",{}]');
    socket.send('40/custom');
    expectConnectReply(await nextText(socket), '40/custom,');
    expectEq(await nextText(socket), '42/custom,["auth",{}]', 'auth packet of /custom');
    socket.send('41/custom');
    socket.send('42["message","message to main namespace"]');
    expectEq(await nextText(socket), '42["message-back","message to main namespace"]', 'message-back');
  },
};

let passed = 0;
let failed = 0;
for (let round = 1; round <= rounds; round++) {
  for (const [name, run] of Object.entries(CASES)) {
    const t0 = performance.now();
    try {
      await within(caseMs, run(), name);
      passed++;
      out({ check: name, round, ok: true, ms: Math.round(performance.now() - t0) });
    } catch (e) {
      failed++;
      out({ check: name, round, ok: false, error: String(e?.message ?? e) });
    }
    for (const s of opened.splice(0)) s.terminate();
  }
}
out({ done: true, passed, failed });
await exit(failed === 0 ? 0 : 1);
