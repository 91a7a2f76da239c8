// The official socket.io-client 4.8 against a Socket.IO server: the ground-truth checks.
//
// Usage: node sio-client-check.mjs URL [--checks echo,rooms,polling,upgrade,recovery,namespaces,heartbeat,burst]
//                                      [--path /socket.io/] [--step-timeout-ms 5000] [--timeout-ms 60000]
// Receives: the server URL (loopback only) and which checks to run. The server must offer the
// swarmbench events (`echo`, `join`, `leave`, `broadcast`) and the namespace `/custom`;
// `recovery` needs the server's connection state recovery on, `heartbeat` a pingInterval of
// at most 2.5 s. Without --checks: echo, rooms, polling, upgrade, namespaces, burst.
// Emits: one JSON line per check, {"check":NAME,"ok":true,"ms":..,...details} or
// {"check":NAME,"ok":false,"error":".."}, then {"done":true,"passed":N,"failed":M}.
// Exit code 0 when every check passed, 1 when one failed, 2 on bad usage, 3 on the overall
// timeout. Must not: hang (every wait is bounded), or leave sockets open at exit.

import { Manager, io } from 'socket.io-client';
import { assertSame, exit, loopbackOnly, out, overallTimeout, parseArgs, show, sleep, usage, within } from './lib.mjs';

const ALL = ['echo', 'rooms', 'polling', 'upgrade', 'recovery', 'namespaces', 'heartbeat', 'burst'];
const args = parseArgs();
if (args._.length !== 1) usage(`usage: node sio-client-check.mjs URL [--checks ${ALL.join(',')}]`);
const url = loopbackOnly(args._[0]);
const path = args.path ?? '/socket.io/';
const stepMs = Number(args['step-timeout-ms'] ?? 5000);
const checks = String(args.checks ?? 'echo,rooms,polling,upgrade,namespaces,burst').split(',').filter(Boolean);
const unknown = checks.filter((c) => !ALL.includes(c));
if (unknown.length) usage(`unknown checks ${unknown.join(',')}; known: ${ALL.join(',')}`);
overallTimeout(Number(args['timeout-ms'] ?? 60000), 'sio-client-check');

const opened = [];

/** Opens a client (new Manager each time) and waits for the namespace CONNECT. */
async function connect(options = {}, onCreate = () => {}, target = url) {
  const socket = io(target, {
    path,
    forceNew: true,
    reconnection: false,
    transports: ['websocket'],
    timeout: stepMs,
    ...options,
  });
  opened.push(socket);
  onCreate(socket);
  await within(
    stepMs,
    new Promise((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('connect_error', (e) => reject(new Error(`connect_error: ${e.message}`)));
    }),
    'connect',
  );
  return socket;
}

/** Queues every `event` a socket receives; `next` takes the oldest, waiting up to `ms`. */
function collect(socket, event) {
  const queue = [];
  const waiters = [];
  socket.on(event, (...a) => {
    const w = waiters.shift();
    if (w) w(a);
    else queue.push(a);
  });
  return {
    next(ms, what) {
      if (queue.length) return Promise.resolve(queue.shift());
      return new Promise((resolve, reject) => {
        const w = (a) => {
          clearTimeout(t);
          resolve(a);
        };
        const t = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          reject(new Error(`${what}: no ${event} event within ${ms} ms`));
        }, ms);
        waiters.push(w);
      });
    },
    /** Asserts nothing arrives for `ms`. */
    async none(ms, what) {
      await sleep(ms);
      if (queue.length) throw new Error(`${what}: unexpected ${event} ${show(queue[0])}`);
    },
  };
}

/** Emits with an ack and resolves with all the ack's arguments. */
function ackAll(socket, event, ...data) {
  return new Promise((resolve, reject) => {
    socket.timeout(stepMs).emit(event, ...data, (err, ...reply) => (err ? reject(new Error(`${event} ack: ${err.message}`)) : resolve(reply)));
  });
}

/** With connection state recovery on, the server appends an offset string to every event it
 * sends without an ack id (docs/ARCHITECTURE.md#connection-state-recovery); the client hands it to the listener as the last
 * argument. Returns the arguments without it, and insists it is there when recovery is on. */
function withoutOffset(socket, received, expectedLen) {
  if (!socket._pid) return received;
  if (received.length !== expectedLen + 1 || typeof received.at(-1) !== 'string') {
    throw new Error(`recovery is on but the event carries no offset: ${show(received)}`);
  }
  return received.slice(0, -1);
}

const ECHO_CASES = [
  [],
  [[1, 'two', { three: 3 }]],
  ['a', 2, { b: [true, null, 1.5] }],
  ['bin', Buffer.from([0, 1, 2, 254, 255]), { nested: Buffer.from('hi'), list: [Buffer.alloc(0)] }],
  [{ text: 'héllo ✓ 😀 "quoted" \\ \u001e' }],
];

async function checkEcho() {
  const s = await connect();
  for (const c of ECHO_CASES) {
    assertSame(await ackAll(s, 'echo', ...c), c, `echo ack of ${show(c)}`);
  }
  assertSame(await s.timeout(stepMs).emitWithAck('echo', 'single'), 'single', 'emitWithAck echo');
  // Without an ack id the server emits `echo` back to the sender.
  const echoes = collect(s, 'echo');
  for (const c of ECHO_CASES) {
    s.emit('echo', ...c);
    assertSame(withoutOffset(s, await echoes.next(stepMs, 'echo event'), c.length), c, `echo event of ${show(c)}`);
  }
  return { cases: ECHO_CASES.length };
}

async function checkRooms() {
  const room = `room-${process.pid}-${Date.now()}`;
  const [a, b, c] = [await connect(), await connect(), await connect()];
  const [inA, inB, inC] = [a, b, c].map((s) => collect(s, 'broadcast'));
  assertSame(await a.timeout(stepMs).emitWithAck('join', room), { room, members: 1 }, 'first join ack');
  assertSame(await b.timeout(stepMs).emitWithAck('join', room), { room, members: 2 }, 'second join ack');
  const data = ['hello', { n: 1, bin: Buffer.from([9, 8, 7]) }];
  // The sender is a member, so it receives its own broadcast; c is not in the room.
  assertSame(await a.timeout(stepMs).emitWithAck('broadcast', room, ...data), 2, 'broadcast ack (recipients)');
  assertSame(withoutOffset(a, await inA.next(stepMs, 'sender'), 2), data, 'broadcast at the sender');
  assertSame(withoutOffset(b, await inB.next(stepMs, 'member'), 2), data, 'broadcast at the other member');
  // A non-member can broadcast into the room; members get it.
  assertSame(await c.timeout(stepMs).emitWithAck('broadcast', room, 'from-outside'), 2, 'outsider broadcast ack');
  assertSame(withoutOffset(a, await inA.next(stepMs, 'member a'), 1), ['from-outside'], 'outsider broadcast at a');
  assertSame(withoutOffset(b, await inB.next(stepMs, 'member b'), 1), ['from-outside'], 'outsider broadcast at b');
  assertSame(await b.timeout(stepMs).emitWithAck('leave', room), { room, members: 1 }, 'leave ack');
  assertSame(await a.timeout(stepMs).emitWithAck('broadcast', room, 'after-leave'), 1, 'broadcast ack after leave');
  assertSame(withoutOffset(a, await inA.next(stepMs, 'after leave'), 1), ['after-leave'], 'broadcast after leave');
  await inB.none(200, 'left member');
  await inC.none(0, 'non-member');
  return { room };
}

async function checkPolling() {
  // HTTP long-polling only: binary attachments travel base64-encoded in the payloads.
  const s = await connect({ transports: ['polling'] });
  for (const c of ECHO_CASES) {
    assertSame(await ackAll(s, 'echo', ...c), c, `polling echo ack of ${show(c)}`);
  }
  const echoes = collect(s, 'echo');
  s.emit('echo', 'no-ack', Buffer.from([7]));
  assertSame(withoutOffset(s, await echoes.next(stepMs, 'polling echo event'), 2), ['no-ack', Buffer.from([7])], 'polling echo event');
  if (s.io.engine.transport.name !== 'polling') throw new Error(`transport is ${s.io.engine.transport.name}`);
  return { cases: ECHO_CASES.length + 1 };
}

async function checkUpgrade() {
  // Listeners go on before the handshake runs: the upgrade can finish before the namespace
  // CONNECT reply arrives.
  let first = null;
  let upgraded;
  const s = await connect({ transports: ['polling', 'websocket'] }, (socket) => {
    const engine = socket.io.engine;
    engine.once('open', () => (first = engine.transport.name));
    upgraded = new Promise((resolve) => engine.once('upgrade', (t) => resolve(t.name)));
  });
  const engine = s.io.engine;
  if (first !== 'polling') throw new Error(`the engine opened on ${first}, expected polling`);
  // An echo while the upgrade may still be in flight must not be lost.
  assertSame(await ackAll(s, 'echo', 'during', Buffer.from([1, 2])), ['during', Buffer.from([1, 2])], 'echo around upgrade');
  const to = await within(stepMs, upgraded, 'engine upgrade');
  if (to !== 'websocket') throw new Error(`upgraded to ${to}`);
  if (engine.transport.name !== 'websocket') throw new Error(`transport is ${engine.transport.name} after upgrade`);
  assertSame(await ackAll(s, 'echo', 'after', Buffer.from([3])), ['after', Buffer.from([3])], 'echo after upgrade');
  return { first, now: engine.transport.name };
}

async function checkRecovery() {
  const room = `recover-${process.pid}-${Date.now()}`;
  const a = await connect();
  const b = await connect();
  if (!a._pid) throw new Error('the server returned no pid: is connection state recovery on?');
  if (a.recovered) throw new Error('a fresh connection says recovered');
  const inA = collect(a, 'broadcast');
  assertSame(await a.timeout(stepMs).emitWithAck('join', room), { room, members: 1 }, 'join ack');
  // One event first, so the client holds an offset to resume from.
  await b.timeout(stepMs).emitWithAck('broadcast', room, 'before');
  assertSame(withoutOffset(a, await inA.next(stepMs, 'before'), 1), ['before'], 'broadcast before the cut');
  const sid = a.id;
  const gone = new Promise((resolve) => a.once('disconnect', resolve));
  a.io.engine.close(); // transport close from the client side: a recoverable reason
  const [reason] = await within(stepMs, gone.then((r) => [r]), 'disconnect');
  // Wait until the server too has seen a go (the room is empty: `leave` of a room b is not
  // in changes nothing and reports its size), so the next broadcast is really missed.
  let members = -1;
  for (let i = 0; i < 100 && members !== 0; i++) {
    ({ members } = await b.timeout(stepMs).emitWithAck('leave', room));
    if (members !== 0) await sleep(20);
  }
  if (members !== 0) throw new Error(`the server still counts ${members} member(s) 2 s after the cut`);
  // While a is away, b broadcasts; it must be replayed on recovery.
  const missed = ['missed', { n: 2 }];
  const awayRecipients = await b.timeout(stepMs).emitWithAck('broadcast', room, ...missed);
  const back = new Promise((resolve, reject) => {
    a.once('connect', resolve);
    a.once('connect_error', (e) => reject(new Error(`reconnect: ${e.message}`)));
  });
  a.connect();
  await within(stepMs, back, 'reconnect');
  if (a.recovered !== true) throw new Error(`socket.recovered is ${a.recovered} after reconnect`);
  if (a.id !== sid) throw new Error(`recovered sid ${a.id} differs from ${sid}`);
  assertSame(withoutOffset(a, await inA.next(stepMs, 'replay'), 2), missed, 'missed broadcast replayed');
  // The recovered socket is back in its room.
  await b.timeout(stepMs).emitWithAck('broadcast', room, 'after');
  assertSame(withoutOffset(a, await inA.next(stepMs, 'after'), 1), ['after'], 'broadcast after recovery');
  return { reason, away_recipients: awayRecipients, sid };
}

async function checkNamespaces() {
  const base = url.replace(/\/$/, '');
  const custom = await connect({}, () => {}, `${base}/custom`);
  if (custom.nsp !== '/custom') throw new Error(`connected to ${custom.nsp}`);
  // An unknown namespace is refused with the Node server's message.
  const nope = io(`${base}/no-such-namespace`, { path, forceNew: true, reconnection: false, transports: ['websocket'] });
  opened.push(nope);
  const [err] = await within(
    stepMs,
    new Promise((resolve, reject) => {
      nope.once('connect_error', (e) => resolve([e]));
      nope.once('connect', () => reject(new Error('an unknown namespace accepted the connection')));
    }),
    'connect_error',
  );
  if (err.message !== 'Invalid namespace') throw new Error(`unknown namespace refused with ${show(err.message)}`);
  // Multiplexing: `/` and `/custom` over one Engine.IO session (the sockets connect by
  // themselves; a second connect() would send a second CONNECT).
  const manager = new Manager(url, { path, reconnection: false, transports: ['websocket'] });
  const [root, other] = [manager.socket('/'), manager.socket('/custom')];
  opened.push(root, other);
  for (const s of [root, other]) {
    await within(
      stepMs,
      new Promise((resolve, reject) => {
        if (s.connected) resolve();
        s.once('connect', resolve);
        s.once('connect_error', (e) => reject(new Error(`connect_error: ${e.message}`)));
      }),
      `multiplexed connect ${s.nsp}`,
    );
  }
  if (root.io.engine !== other.io.engine) throw new Error('the namespaces did not share one engine');
  if (root.id === other.id) throw new Error('two namespaces share one Socket.IO sid');
  assertSame(await ackAll(root, 'echo', 'multiplexed'), ['multiplexed'], 'echo on / next to /custom');
  other.disconnect();
  assertSame(await ackAll(root, 'echo', 'still'), ['still'], 'echo on / after /custom left');
  return { refused_with: err.message };
}

async function checkHeartbeat() {
  // Both transports; the engine emits `ping` for every server ping it answers.
  const recs = [];
  const track = (socket) => {
    const engine = socket.io.engine;
    const rec = { opened: 0, first: null, pings: 0 };
    engine.once('open', () => (rec.opened = performance.now()));
    engine.on('ping', () => {
      rec.pings++;
      rec.first ??= performance.now();
    });
    recs.push(rec);
  };
  const ws = await connect({}, track);
  const poll = await connect({ transports: ['polling'] }, track);
  const interval = ws.io.engine._pingInterval;
  if (!(interval > 0 && interval <= 2500)) {
    throw new Error(`pingInterval is ${interval} ms; start the server with one of at most 2.5 s for this check`);
  }
  const drops = [];
  ws.on('disconnect', (r) => drops.push(`websocket: ${r}`));
  poll.on('disconnect', (r) => drops.push(`polling: ${r}`));
  await sleep(Math.round(interval * 3.5));
  if (drops.length) throw new Error(`disconnected while answering pings: ${drops.join(', ')}`);
  for (const [i, rec] of recs.entries()) {
    const name = i === 0 ? 'websocket' : 'polling';
    if (rec.pings < 2) throw new Error(`${name}: ${rec.pings} ping(s) in ${3.5 * interval} ms`);
    // The first ping comes one pingInterval after the open packet, not at once.
    const firstMs = rec.first - rec.opened;
    if (firstMs < interval / 2) throw new Error(`${name}: first ping ${firstMs.toFixed(0)} ms after open, pingInterval ${interval} ms`);
  }
  assertSame(await ackAll(ws, 'echo', 'alive'), ['alive'], 'echo after pings (websocket)');
  assertSame(await ackAll(poll, 'echo', 'alive'), ['alive'], 'echo after pings (polling)');
  return { ping_interval_ms: interval, pings_websocket: recs[0].pings, pings_polling: recs[1].pings };
}

async function checkBurst() {
  // Back-to-back emits on each transport: every ack arrives, in the order sent (events of one
  // socket are handled in order), and a 600 KB binary round-trips (polling sends it base64).
  const result = {};
  for (const transports of [['websocket'], ['polling']]) {
    const s = await connect({ transports });
    const order = [];
    const n = 200;
    await Promise.all(
      Array.from({ length: n }, (_, i) => {
        const data = i % 10 === 0 ? Buffer.alloc(1000, i % 256) : { i, text: 'x'.repeat(100) };
        return ackAll(s, 'echo', i, data).then(([j, back]) => {
          assertSame(back, data, `burst echo ${i}`);
          order.push(j);
        });
      }),
    );
    const firstWrong = order.findIndex((v, k) => v !== k);
    if (firstWrong !== -1) throw new Error(`${transports}: ack ${order[firstWrong]} arrived in place ${firstWrong}`);
    const big = Buffer.alloc(600_000, 7);
    assertSame(await ackAll(s, 'echo', big), [big], `${transports}: 600 KB binary`);
    result[`acks_${transports}`] = order.length;
  }
  return result;
}

const RUN = {
  echo: checkEcho,
  rooms: checkRooms,
  polling: checkPolling,
  upgrade: checkUpgrade,
  recovery: checkRecovery,
  namespaces: checkNamespaces,
  heartbeat: checkHeartbeat,
  burst: checkBurst,
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
  for (const s of opened.splice(0)) s.disconnect();
}
out({ done: true, passed, failed });
exit(failed === 0 ? 0 : 1);
