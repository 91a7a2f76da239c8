// A swarmbench HTML report (or comparison) in a real headless Chromium, offline.
//
// Usage: node report-check.mjs FILE.html [--shots DIR] [--chromium /usr/bin/chromium]
//                                        [--width 1400] [--height 900] [--timeout-ms 60000]
//                                        [--section-shots]
// Receives: a report file on disk. Loads it from its file:// URL in a fresh profile (a new
// temporary user-data-dir, removed at exit) with the browser context offline and every
// request other than the file itself aborted and recorded, then counts what rendered: the
// <svg> elements of each `[data-section]`, the hover targets (`.hit` with a <title>) of each
// `[data-chart]`, any <script>, <img>, <iframe> or inline event handler in the document (a
// report has none, so one means a string of the run escaped its escaping), and reads the
// <title> of the first hover target. Writes `first-screen.png` (the viewport) and
// `full-page.png` into --shots (default: the file's folder), and with --section-shots one
// `section-<id>.png` per `[data-section]`.
// Emits: {"step":"loaded"}, {"screenshot":FILE} lines, then one final line
// {"done":true,"ok":BOOL,"console_errors":[..],"requests":[..],"sections":{id:n},
//  "charts":{id:hits},"active":{script:n,img:n,iframe:n,handlers:n},"first_title":STR,
//  "headline":STR,"failures":[..]}.
// Exit code 0 when the page loaded with no console error, no page error and no request
// beyond the file; 1 otherwise; 2 bad usage; 3 overall timeout. Must not: reach the
// network, hang, leave Chromium running, or write outside the temp profile and --shots.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { exit, out, overallTimeout, parseArgs, usage } from './lib.mjs';

const args = parseArgs();
if (args._.length !== 1) usage('usage: node report-check.mjs FILE.html [--shots DIR]');
const file = resolve(String(args._[0]));
const url = pathToFileURL(file).href;
const shots = resolve(String(args.shots ?? dirname(file)));
const width = Number(args.width ?? 1400);
const height = Number(args.height ?? 900);
overallTimeout(Number(args['timeout-ms'] ?? 60000), 'report-check');

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

const profile = mkdtempSync(join(tmpdir(), 'report-check-profile-'));
const consoleErrors = [];
const requests = [];
const failures = [];
let context;
let result = {};

try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: String(args.chromium ?? '/usr/bin/chromium'),
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width, height },
    offline: true,
  });
  await context.route('**/*', (route) => {
    const u = route.request().url();
    if (u === url) return route.continue();
    requests.push(u);
    return route.abort();
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => consoleErrors.push(`pageerror: ${e.message}`));
  page.on('dialog', (d) => {
    failures.push(`a dialog opened: ${d.message()}`);
    d.dismiss().catch(() => {});
  });
  const response = await page.goto(url, { waitUntil: 'load', timeout: 30000 });
  out({ step: 'loaded', ok: response === null || response.ok() });
  result = await page.evaluate(() => {
    const sections = {};
    for (const s of document.querySelectorAll('[data-section]')) {
      const id = s.getAttribute('data-section');
      sections[id] = (sections[id] ?? 0) + s.querySelectorAll('svg').length;
    }
    const charts = {};
    for (const c of document.querySelectorAll('[data-chart]')) {
      charts[c.getAttribute('data-chart')] = c.querySelectorAll('svg .hit > title').length;
    }
    let handlers = 0;
    for (const el of document.querySelectorAll('*')) {
      for (const a of el.attributes) if (a.name.toLowerCase().startsWith('on')) handlers++;
    }
    const first = document.querySelector('svg .hit > title');
    const headline = document.querySelector('.headline');
    return {
      sections,
      charts,
      active: {
        script: document.querySelectorAll('script').length,
        img: document.querySelectorAll('img').length,
        iframe: document.querySelectorAll('iframe').length,
        handlers,
      },
      first_title: first ? first.textContent : null,
      headline: headline ? headline.textContent : null,
    };
  });
  const firstShot = join(shots, 'first-screen.png');
  await page.screenshot({ path: firstShot });
  out({ screenshot: firstShot });
  const hit = page.locator('svg .hit').first();
  if ((await hit.count()) > 0) await hit.hover({ timeout: 5000, force: true });
  const fullShot = join(shots, 'full-page.png');
  await page.screenshot({ path: fullShot, fullPage: true });
  out({ screenshot: fullShot });
  if (args['section-shots']) {
    const ids = await page.$$eval('section[data-section]', (l) => l.map((s) => s.id).filter(Boolean));
    for (const id of ids) {
      const shot = join(shots, `section-${id.replace(/[^a-z0-9_-]/gi, '_')}.png`);
      await page.locator(`section[id="${id}"]`).screenshot({ path: shot });
      out({ screenshot: shot });
    }
  }
} catch (e) {
  failures.push(String(e && e.stack ? e.stack : e));
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}

const ok = failures.length === 0 && consoleErrors.length === 0 && requests.length === 0;
out({ done: true, ok, console_errors: consoleErrors, requests, failures, ...result });
await exit(ok ? 0 : 1);
