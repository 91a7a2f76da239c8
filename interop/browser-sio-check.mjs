// The official socket.io-client 4.8 browser bundle inside real headless Chromium against a
// server: browser XHR long-polling, the browser's native WebSocket, binary as ArrayBuffer.
//
// Usage: node browser-sio-check.mjs URL [--chromium /usr/bin/chromium] [--step-timeout-ms 5000]
//                                       [--timeout-ms 60000]
// Receives: the server URL (loopback only). Chromium loads URL (any same-origin page, e.g. the
// status page `/`), the client bundle from node_modules is injected into it, and from inside the
// page each transport setting (polling, websocket, polling then websocket) connects, acks an
// `echo` with JSON and with an ArrayBuffer, and gets an `echo` event back without an ack.
// Emits: {"transport":NAME,"ok":BOOL,...} per setting, then
// {"done":true,"ok":BOOL,"console_errors":[..],"failures":[..]}. Exit code 0 when every
// setting passed with no console errors; 1 otherwise; 2 bad usage; 3 overall timeout.
// Must not: download a browser, leave Chromium running, write outside its temp profile.

import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { exit, loopbackOnly, out, overallTimeout, parseArgs, usage } from './lib.mjs';

const args = parseArgs();
if (args._.length !== 1) usage('usage: node browser-sio-check.mjs URL [--chromium PATH]');
const url = loopbackOnly(args._[0]);
const stepMs = Number(args['step-timeout-ms'] ?? 5000);
overallTimeout(Number(args['timeout-ms'] ?? 60000), 'browser-sio-check');
const bundle = join(createRequire(import.meta.url).resolve('socket.io-client').split('/build/')[0], 'dist', 'socket.io.min.js');
const profile = mkdtempSync(join(tmpdir(), 'browser-sio-profile-'));

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
  '--disable-sync',
  '--disable-quic',
];

/** Runs inside the page: one transport setting, returns what came back. */
async function roundTrips({ transports, stepMs }) {
  const within = (p, what) =>
    Promise.race([p, new Promise((_, no) => setTimeout(() => no(new Error(`${what}: no answer in ${stepMs} ms`)), stepMs))]);
  const s = io({ transports, forceNew: true, reconnection: false });
  try {
    await within(new Promise((ok, no) => {
      s.once('connect', ok);
      s.once('connect_error', (e) => no(new Error(`connect_error: ${e.message}`)));
    }), 'connect');
    const json = await s.timeout(stepMs).emitWithAck('echo', { text: 'héllo ✓', n: [1, 2] });
    const bin = new Uint8Array([0, 1, 2, 254, 255]).buffer;
    const [label, back] = await new Promise((ok, no) =>
      s.timeout(stepMs).emit('echo', 'bin', bin, (e, ...a) => (e ? no(e) : ok(a))),
    );
    const event = await within(new Promise((ok) => {
      s.once('echo', (...a) => ok(a));
      s.emit('echo', 'no-ack');
    }), 'echo event');
    if (transports.length > 1 && s.io.engine.transport.name !== 'websocket') {
      await within(new Promise((ok) => s.io.engine.once('upgrade', ok)), 'upgrade');
    }
    return {
      json,
      label,
      binary_kind: Object.prototype.toString.call(back),
      binary: Array.from(new Uint8Array(back)),
      event,
      now: s.io.engine.transport.name,
      sid: s.io.engine.id,
      closed_at: Date.now(),
    };
  } finally {
    s.disconnect();
  }
}

const EXPECTED_BINARY = [0, 1, 2, 254, 255];
const consoleErrors = [];
const failures = [];
/** Every HTTP response >= 400 the page saw, with the setting that was running. */
const httpErrors = [];
/**
 * Polling responses of 400 for a session the page had already closed: a long poll the
 * client sent just before `disconnect()` can reach the server after the close packet has
 * ended the session, and the server rightly answers "Session ID unknown" (Node does too).
 * Only these are forgiven, and only when the response came after the close.
 */
const afterClose = (e, closed) =>
  e.status === 400 &&
  closed.some((c) => e.url.includes(`sid=${c.sid}`) && e.at >= c.at);
const closedSessions = [];
let setting = 'page';
let context;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: String(args.chromium ?? '/usr/bin/chromium'),
    headless: true,
    args: CHROMIUM_ARGS,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push({ text: `console: ${m.text()}`, url: m.location()?.url ?? '' });
  });
  page.on('pageerror', (e) => consoleErrors.push({ text: `pageerror: ${e.message}`, url: '' }));
  page.on('response', (r) => {
    if (r.status() >= 400) {
      httpErrors.push({ setting, status: r.status(), method: r.request().method(), url: r.url(), at: Date.now() });
    }
  });
  await page.goto(url, { waitUntil: 'load', timeout: stepMs });
  await page.addScriptTag({ path: bundle });
  for (const transports of [['polling'], ['websocket'], ['polling', 'websocket']]) {
    const name = transports.join('+');
    setting = name;
    try {
      const r = await page.evaluate(roundTrips, { transports, stepMs });
      closedSessions.push({ sid: r.sid, at: r.closed_at });
      const problems = [];
      if (JSON.stringify(r.json) !== JSON.stringify({ text: 'héllo ✓', n: [1, 2] })) problems.push(`json ack ${JSON.stringify(r.json)}`);
      if (r.label !== 'bin' || r.binary_kind !== '[object ArrayBuffer]' || JSON.stringify(r.binary) !== JSON.stringify(EXPECTED_BINARY)) {
        problems.push(`binary ack ${r.label} ${r.binary_kind} ${JSON.stringify(r.binary)}`);
      }
      if (JSON.stringify(r.event) !== JSON.stringify(['no-ack'])) problems.push(`echo event ${JSON.stringify(r.event)}`);
      const want = transports.at(-1);
      if (r.now !== want) problems.push(`transport ${r.now}, expected ${want}`);
      out({ transport: name, ok: problems.length === 0, now: r.now, problems });
      failures.push(...problems.map((p) => `${name}: ${p}`));
    } catch (e) {
      out({ transport: name, ok: false, error: String(e?.message ?? e) });
      failures.push(`${name}: ${e?.message ?? e}`);
    }
  }
} catch (e) {
  failures.push(String(e?.message ?? e));
} finally {
  await context?.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}

const forgiven = httpErrors.filter((e) => afterClose(e, closedSessions));
const counted = consoleErrors
  .filter((c) => !(c.text.includes('status of 400') && forgiven.some((e) => e.url === c.url)))
  .map((c) => c.text);
const ok = failures.length === 0 && counted.length === 0;
out({
  done: true,
  ok,
  console_errors: counted,
  failures,
  http_errors: httpErrors,
  forgiven_after_close: forgiven.map((e) => `${e.method} ${e.status} ${e.url}`),
});
await exit(ok ? 0 : 1);
