// A small chat application on socket.io 4.8 that no swarm scenario fits as is: it is the
// example target of docs/TESTING-YOUR-SERVER.md ("A real application").
//
// Usage: node chat-server.mjs --tokens FILE [--port 0]
// Receives: its options; FILE is a CSV with a header line holding `user` and `token`
// columns (no quoting needed: tokens are plain). Serves on 127.0.0.1:
//   CONNECT auth {token}        refused (connect_error "unauthorized") unless the token is in
//                               FILE; the socket then speaks as that token's user
//   join(room, ack?)            joins the room by name; ack {room, members}
//   leave(room, ack?)           ack {room, members}
//   message(room, body, ack?)   stores {id, room, from, body} with a server-assigned id (a
//                               counter), emits `message` with it to the room, acks {id}
//   history(room)               answered by a `history` event (not an ack):
//                               {room, messages: the room's last 50}
//   history({room, requestId})  the same, the event also carrying requestId (so that a
//                               client with several requests out can match the answers)
//   GET /logins                 {"logins": {user: successful CONNECTs}, "refused": N}
// Emits: {"listening":PORT} on stdout once bound, {"closed":true} on SIGINT/SIGTERM.
// Must not: bind anything but 127.0.0.1, print anything else on stdout, or log tokens.

import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { Server } from 'socket.io';
import { exit, out, parseArgs } from './lib.mjs';

const args = parseArgs();
const port = Number(args.port ?? 0);
if (typeof args.tokens !== 'string') {
  process.stderr.write('chat-server: --tokens FILE is required\n');
  await exit(2);
}

/** token -> user, from the CSV's `user` and `token` columns. */
function readTokens(path) {
  const lines = readFileSync(path, 'utf8').split(/\r?\n/).filter((l) => l.trim() !== '');
  const header = lines[0].split(',').map((h) => h.trim());
  const u = header.indexOf('user');
  const t = header.indexOf('token');
  if (u < 0 || t < 0) throw new Error(`${path}: the header needs user and token columns`);
  const map = new Map();
  for (const line of lines.slice(1)) {
    const cells = line.split(',');
    map.set(cells[t], cells[u]);
  }
  return map;
}

const users = readTokens(args.tokens);
const logins = new Map();
let refused = 0;
let nextId = 0;
const HISTORY = 50;
const rooms = new Map(); // room -> last messages

const http = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/logins') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ logins: Object.fromEntries(logins), refused }));
    return;
  }
  if (!req.url.startsWith('/socket.io/')) {
    res.statusCode = 404;
    res.end();
  }
});
const sio = new Server(http);

function splitAck(list) {
  return typeof list.at(-1) === 'function' ? [list.slice(0, -1), list.at(-1)] : [list, null];
}
const members = (room) => sio.of('/').adapter.rooms.get(room)?.size ?? 0;

sio.use((socket, next) => {
  const token = socket.handshake.auth?.token;
  const user = typeof token === 'string' ? users.get(token) : undefined;
  if (user === undefined) {
    refused += 1;
    next(new Error('unauthorized'));
    return;
  }
  socket.data.user = user;
  logins.set(user, (logins.get(user) ?? 0) + 1);
  next();
});

sio.on('connection', (socket) => {
  socket.on('join', (...raw) => {
    const [[room], ack] = splitAck(raw);
    if (typeof room !== 'string') return;
    socket.join(room);
    ack?.({ room, members: members(room) });
  });
  socket.on('leave', (...raw) => {
    const [[room], ack] = splitAck(raw);
    if (typeof room !== 'string') return;
    socket.leave(room);
    ack?.({ room, members: members(room) });
  });
  socket.on('message', (...raw) => {
    const [[room, body], ack] = splitAck(raw);
    if (typeof room !== 'string') return;
    nextId += 1;
    const msg = { id: nextId, room, from: socket.data.user, body };
    const list = rooms.get(room) ?? [];
    list.push(msg);
    if (list.length > HISTORY) list.shift();
    rooms.set(room, list);
    sio.to(room).emit('message', msg);
    ack?.({ id: msg.id });
  });
  socket.on('history', (arg) => {
    const room = typeof arg === 'string' ? arg : arg?.room;
    if (typeof room !== 'string') return;
    const reply = { room, messages: rooms.get(room) ?? [] };
    if (typeof arg === 'object' && (typeof arg.requestId === 'string' || typeof arg.requestId === 'number')) {
      reply.requestId = arg.requestId;
    }
    socket.emit('history', reply);
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
