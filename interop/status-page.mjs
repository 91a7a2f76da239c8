// The live status page in a real headless Chromium (Debian's /usr/bin/chromium driven by
// playwright-core; no browser is ever downloaded).
//
// Usage: node status-page.mjs URL [--count-selector CSS] [--ws-path /ws/echo]
//                                 [--screenshot FILE] [--chromium /usr/bin/chromium]
//                                 [--wait-ms 5000] [--timeout-ms 60000]
// Receives: the status page URL (loopback only). Loads it in a fresh profile (a new temporary
// user-data-dir, removed at exit), reads the connection count shown in the element matched by
// --count-selector, opens a raw WebSocket client to --ws-path on the same host (and checks it
// echoes), waits for the shown count to change, takes a screenshot while the client is
// connected, closes the client and waits for the count to come back.
// Emits: JSON lines {"step":..} per stage, {"screenshot":FILE}, then
// {"done":true,"ok":BOOL,"console_errors":[..],"failures":[..]}. Exit code 0 when the page
// loaded with no console errors or page errors and the count moved both ways; 1 otherwise;
// 2 bad usage; 3 overall timeout. Must not: hang, leave Chromium running, write outside
// the temp dir and the screenshot path.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import WebSocket from 'ws';
import { exit, loopbackOnly, out, overallTimeout, parseArgs, usage, within } from './lib.mjs';

const args = parseArgs();
if (args._.length !== 1) usage('usage: node status-page.mjs URL [--count-selector CSS] [--screenshot FILE]');
const url = loopbackOnly(args._[0]);
const selector = String(args['count-selector'] ?? '#connections');
const wsPath = String(args['ws-path'] ?? '/ws/echo');
const waitMs = Number(args['wait-ms'] ?? 5000);
const profile = mkdtempSync(join(tmpdir(), 'status-page-profile-'));
const screenshot = String(args.screenshot ?? join(profile, '..', `status-page-${process.pid}.png`));
overallTimeout(Number(args['timeout-ms'] ?? 60000), 'status-page');

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

const consoleErrors = [];
const failures = [];
let context;
let client;

/** The count shown on the page, or null when the element is missing or not a number. */
async function shownCount(page) {
  const text = await page.locator(selector).first().textContent({ timeout: waitMs }).catch(() => null);
  const n = text === null ? NaN : Number(text.trim().replace(/[,\s]/g, ''));
  return Number.isFinite(n) ? n : null;
}

/** Polls the shown count until `pred` holds or `waitMs` passes; returns the last value. */
async function waitCount(page, pred) {
  const end = Date.now() + waitMs;
  let n = await shownCount(page);
  while (!pred(n) && Date.now() < end) {
    await page.waitForTimeout(100);
    n = await shownCount(page);
  }
  return n;
}

try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: String(args.chromium ?? '/usr/bin/chromium'),
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 900 },
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => consoleErrors.push(`pageerror: ${e.message}`));

  const response = await page.goto(url, { waitUntil: 'load', timeout: waitMs });
  const status = response?.status() ?? 0;
  if (status !== 200) failures.push(`GET ${url} answered ${status}`);
  const before = await waitCount(page, (n) => n !== null);
  out({ step: 'loaded', status, count: before });
  if (before === null) throw new Error(`no number in ${selector} within ${waitMs} ms`);

  const wsUrl = new URL(wsPath, url);
  wsUrl.protocol = wsUrl.protocol === 'https:' ? 'wss:' : 'ws:';
  client = new WebSocket(wsUrl);
  await within(waitMs, new Promise((resolve, reject) => {
    client.once('open', resolve);
    client.once('error', reject);
  }), `open ${wsUrl}`);
  client.send('status-page-check');
  const [echo] = await within(waitMs, new Promise((resolve) => client.once('message', (d) => resolve([String(d)]))), 'echo');
  out({ step: 'ws_open', url: String(wsUrl), echo_ok: echo === 'status-page-check' });
  if (echo !== 'status-page-check') failures.push(`${wsPath} echoed ${JSON.stringify(echo)}`);

  const t0 = Date.now();
  const during = await waitCount(page, (n) => n !== null && n !== before);
  out({ step: 'count_after_connect', from: before, to: during, ms: Date.now() - t0 });
  if (during === before) failures.push(`the shown count stayed ${before} for ${waitMs} ms after a client connected`);

  await page.screenshot({ path: screenshot, fullPage: true });
  out({ screenshot });

  const closed = new Promise((resolve) => client.once('close', resolve));
  client.close(1000);
  await within(waitMs, closed, 'ws close');
  const t1 = Date.now();
  const after = await waitCount(page, (n) => n === before);
  out({ step: 'count_after_close', from: during, to: after, ms: Date.now() - t1 });
  if (after !== before) failures.push(`the shown count is ${after}, not back to ${before}, ${waitMs} ms after the client left`);
} catch (e) {
  failures.push(String(e?.message ?? e));
} finally {
  client?.terminate();
  await context?.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}

const ok = failures.length === 0 && consoleErrors.length === 0;
out({ done: true, ok, console_errors: consoleErrors, failures });
await exit(ok ? 0 : 1);
