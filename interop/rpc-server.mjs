// An RPC-over-events API on socket.io 4.8, the example of docs/TESTING-YOUR-SERVER.md
// ("RPC over events"): requests are `call` events, answers are `result` events (never
// acks) that carry the request's id back, and they come back out of order.
//
// Usage: node rpc-server.mjs [--port 0] [--slow-every N] [--slow-ms MS] [--fail-every N]
//                            [--silent-every N]
// Receives: its options. Serves on 127.0.0.1:
//   call({requestId, method, params})  answered by a `result` event {requestId, result}
//                                      (result = {method, params, ticket}: the params
//                                      echoed, and a fresh random ticket);
//                                      every N-th call (--slow-every, default 3) is held
//                                      --slow-ms (default 120) so that later calls'
//                                      answers overtake it (counted over all clients);
//                                      every N-th (--fail-every) answers {requestId, error};
//                                      every N-th (--silent-every) is never answered
//   GET /calls                         {"calls": N, "answered": N, "ticket": the last one}
// Emits: {"listening":PORT} on stdout once bound, {"closed":true} on SIGINT/SIGTERM.
// Must not: bind anything but 127.0.0.1, or print anything else on stdout.

import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { Server } from 'socket.io';
import { exit, out, parseArgs } from './lib.mjs';

const args = parseArgs();
const port = Number(args.port ?? 0);
const every = (k, d) => Number(args[k] ?? d);
const slowEvery = every('slow-every', 3);
const slowMs = every('slow-ms', 120);
const failEvery = every('fail-every', 0);
const silentEvery = every('silent-every', 0);
let calls = 0;
let answered = 0;
let lastTicket = null;

const http = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/calls') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ calls, answered, ticket: lastTicket }));
    return;
  }
  if (!req.url.startsWith('/socket.io/')) {
    res.statusCode = 404;
    res.end();
  }
});
const sio = new Server(http);

sio.on('connection', (socket) => {
  socket.on('call', (req) => {
    if (typeof req !== 'object' || req === null) return;
    const { requestId, method, params } = req;
    if (typeof requestId !== 'string' && typeof requestId !== 'number') return;
    calls += 1;
    const n = calls;
    if (silentEvery > 0 && n % silentEvery === 0) return;
    const ticket = `tk-${randomBytes(8).toString('hex')}`;
    const reply =
      failEvery > 0 && n % failEvery === 0
        ? { requestId, error: 'failed on purpose' }
        : { requestId, result: { method, params, ticket } };
    if (reply.result) lastTicket = ticket;
    const send = () => {
      answered += 1;
      socket.emit('result', reply);
    };
    if (slowEvery > 0 && n % slowEvery === 0) setTimeout(send, slowMs);
    else send();
  });
});

http.listen(port, '127.0.0.1', () => out({ listening: http.address().port }));

function stop() {
  sio.close(() => {
    out({ closed: true });
    exit(0);
  });
  setTimeout(() => exit(0), 2000).unref();
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
