// Shared helpers of the interop scripts: argv parsing, JSON-lines output, deadlines.
//
// Receives: process.argv. Emits: one JSON object per line on stdout (`out`), nothing else
// on stdout. Must not: keep the process alive (timers are unref'd) or talk to any address
// outside 127.0.0.0/8 (`loopbackOnly` enforces it for target URLs).

import { isDeepStrictEqual } from 'node:util';

/** Parses `node script.mjs POSITIONAL... --key value --flag` into {_: [...], key: value, flag: true}. */
export function parseArgs(argv = process.argv.slice(2)) {
  const args = { _: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) {
      args._.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    if (eq > 0) {
      args[a.slice(2, eq)] = a.slice(eq + 1);
    } else if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) {
      args[a.slice(2)] = argv[++i];
    } else {
      args[a.slice(2)] = true;
    }
  }
  return args;
}

/** Writes one JSON line to stdout. */
export function out(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

/** Exits with `code` once stdout is flushed (stdout to a pipe or file is synchronous on
 * Linux; the callback covers the other cases). Returns a promise that never resolves, so
 * `await exit(n)` stops the caller. */
export function exit(code) {
  process.exitCode = code;
  process.stdout.write('', () => process.exit(code));
  return new Promise(() => {});
}

/** Prints {"error": message} and exits with code 2 (bad usage). */
export function usage(message) {
  out({ error: message });
  process.exit(2);
}

/** Kills the whole script after `ms` with a JSON line saying so (exit code 3). */
export function overallTimeout(ms, what) {
  const t = setTimeout(() => {
    out({ timeout: true, what, after_ms: ms });
    exit(3);
  }, ms);
  t.unref();
  return t;
}

/** Exits with a usage error unless `url` points at a loopback host (tests never reach further). */
export function loopbackOnly(url) {
  if (!URL.canParse(url)) usage(`not a URL: ${url}`);
  const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
  const ok = host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
  if (!ok) usage(`refusing non-loopback target ${url}`);
  return url;
}

/** Resolves after `ms`. */
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Resolves with `promise` or rejects with `what timed out` after `ms`. */
export function within(ms, promise, what) {
  let t;
  const timer = new Promise((_, reject) => {
    t = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timer]).finally(() => clearTimeout(t));
}

/** Resolves with the arguments of the next `event` on `emitter`, or rejects after `ms`. */
export function next(emitter, event, ms) {
  return within(
    ms,
    new Promise((resolve) => emitter.once(event, (...args) => resolve(args))),
    `event ${event}`,
  );
}

/** Turns every binary value (Buffer, ArrayBuffer, typed array) into a Buffer, recursively. */
export function normalize(v) {
  if (Buffer.isBuffer(v)) return Buffer.from(v);
  if (v instanceof ArrayBuffer) return Buffer.from(v);
  if (ArrayBuffer.isView(v)) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  if (Array.isArray(v)) return v.map(normalize);
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, normalize(x)]));
  }
  return v;
}

/** Deep equality after `normalize`; throws a readable error when the values differ. */
export function assertSame(actual, expected, what) {
  const a = normalize(actual);
  const e = normalize(expected);
  if (!isDeepStrictEqual(a, e)) {
    throw new Error(`${what}: expected ${show(e)}, got ${show(a)}`);
  }
}

/** A short printable form of a value, binary shown as hex. */
export function show(v) {
  return JSON.stringify(normalize(v), (_, x) =>
    x && x.type === 'Buffer' && Array.isArray(x.data) ? `<bin ${Buffer.from(x.data).toString('hex')}>` : x,
  );
}
