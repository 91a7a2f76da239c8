// The classic express + socket.io 4.8 server: the Node reference that swarmbench's tests and
// benchmarks compare against.
//
// Usage: node sio-server.mjs [--port 0] [--recovery [MS]] [--ping-interval MS] [--ping-timeout MS]
// Receives: its options. Serves on 127.0.0.1: `/` (an HTML page using the socket.io client
// the server ships at /socket.io/socket.io.js) and Socket.IO at /socket.io/ (namespaces `/` and
// `/custom`) with the swarmbench events of the default namespace:
//   echo(...args, ack?)        ack with exactly the args; without an ack, emit `echo` back
//   join(room, ack?)           ack {room, members}
//   leave(room, ack?)          ack {room, members}
//   broadcast(room, ...data, ack?)  emit `broadcast` ...data to the room, ack the recipient count
// Emits: {"listening":PORT} on stdout once bound, {"closed":true} on SIGINT/SIGTERM.
// Must not: bind anything but 127.0.0.1, print anything else on stdout.

import { createServer } from 'node:http';
import express from 'express';
import { Server } from 'socket.io';
import { exit, out, parseArgs } from './lib.mjs';

const args = parseArgs();
const port = Number(args.port ?? 0);
const options = {};
if (args['ping-interval']) options.pingInterval = Number(args['ping-interval']);
if (args['ping-timeout']) options.pingTimeout = Number(args['ping-timeout']);
if (args.recovery) {
  const ms = args.recovery === true ? 120000 : Number(args.recovery);
  options.connectionStateRecovery = { maxDisconnectionDuration: ms, skipMiddlewares: true };
}

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>socket.io reference server</title>
<link rel="icon" href="data:,">
</head>
<body>
<h1>socket.io reference server</h1>
<p>Transport: <span id="transport">connecting</span>. Echo round trip: <span id="rtt">-</span> ms.</p>
<script src="/socket.io/socket.io.js"></script>
<script>
  const socket = io();
  const show = (id, text) => { document.getElementById(id).textContent = text; };
  socket.on('connect', () => {
    show('transport', socket.io.engine.transport.name);
    socket.io.engine.on('upgrade', (t) => show('transport', t.name));
  });
  setInterval(() => {
    const t0 = performance.now();
    socket.emit('echo', 'ping', () => show('rtt', (performance.now() - t0).toFixed(1)));
  }, 1000);
</script>
</body>
</html>
`;

const app = express();
app.get('/', (_req, res) => res.type('html').send(PAGE));
const http = createServer(app);
const sio = new Server(http, options);

/** Splits a trailing ack function off the arguments of an event. */
function splitAck(list) {
  return typeof list.at(-1) === 'function' ? [list.slice(0, -1), list.at(-1)] : [list, null];
}

const members = (room) => sio.of('/').adapter.rooms.get(room)?.size ?? 0;

// Served like target-server's defaults: `/` with the events below, `/custom` with none.
sio.of('/custom');

sio.on('connection', (socket) => {
  socket.on('echo', (...raw) => {
    const [data, ack] = splitAck(raw);
    if (ack) ack(...data);
    else socket.emit('echo', ...data);
  });
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
  socket.on('broadcast', (...raw) => {
    const [[room, ...data], ack] = splitAck(raw);
    if (typeof room !== 'string') return;
    sio.to(room).emit('broadcast', ...data);
    ack?.(members(room));
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
