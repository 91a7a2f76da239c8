// A presence channel on socket.io 4.8, the example of docs/TESTING-YOUR-SERVER.md
// ("A presence channel"): clients subscribe to a channel as a user, and everybody in the
// channel gets the channel's member list whenever it changes.
//
// Usage: node presence-server.mjs [--port 0]
// Receives: its options. Serves on 127.0.0.1:
//   subscribe({channel, user}, ack?)   joins; ack {channel, members: count}; then emits
//                                      `presence` {channel, members: [users], joined: user}
//                                      to the whole channel (the subscriber included)
//   unsubscribe({channel}, ack?)       leaves; ack {channel}; `presence` {channel, members,
//                                      left: user} to the rest of the channel
//   GET /stats                         {"subscribes": N, "unsubscribes": N}
// Emits: {"listening":PORT} on stdout once bound, {"closed":true} on SIGINT/SIGTERM.
// Must not: bind anything but 127.0.0.1, or print anything else on stdout.

import { createServer } from 'node:http';
import { Server } from 'socket.io';
import { exit, out, parseArgs } from './lib.mjs';

const args = parseArgs();
const port = Number(args.port ?? 0);
const channels = new Map(); // channel -> Map(socket id -> user)
let subscribes = 0;
let unsubscribes = 0;

const http = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/stats') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ subscribes, unsubscribes }));
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
const members = (channel) => [...(channels.get(channel)?.values() ?? [])].sort();

sio.on('connection', (socket) => {
  const mine = new Set();
  socket.on('subscribe', (...raw) => {
    const [[req], ack] = splitAck(raw);
    const channel = req?.channel;
    const user = req?.user;
    if (typeof channel !== 'string' || typeof user !== 'string') return;
    subscribes += 1;
    if (!channels.has(channel)) channels.set(channel, new Map());
    channels.get(channel).set(socket.id, user);
    mine.add(channel);
    socket.join(channel);
    ack?.({ channel, members: channels.get(channel).size });
    sio.to(channel).emit('presence', { channel, members: members(channel), joined: user });
  });
  const leave = (channel) => {
    const m = channels.get(channel);
    const user = m?.get(socket.id);
    if (user === undefined) return;
    m.delete(socket.id);
    mine.delete(channel);
    socket.leave(channel);
    sio.to(channel).emit('presence', { channel, members: members(channel), left: user });
  };
  socket.on('unsubscribe', (...raw) => {
    const [[req], ack] = splitAck(raw);
    if (typeof req?.channel !== 'string') return;
    unsubscribes += 1;
    leave(req.channel);
    ack?.({ channel: req.channel });
  });
  socket.on('disconnect', () => {
    for (const c of [...mine]) leave(c);
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
