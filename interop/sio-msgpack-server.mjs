// A socket.io 4.8 server that speaks the msgpack parser (npm `socket.io-msgpack-parser`) instead
// of the default JSON text parser: the Node reference for `swarm ... --parser msgpack`.
//
// Usage: node sio-msgpack-server.mjs [--port 0] [--ping-interval MS] [--ping-timeout MS]
// Receives: its options. Serves Socket.IO on 127.0.0.1 at /socket.io/ (namespaces `/` and
// `/custom`); every Socket.IO packet is one msgpack map {type, nsp, data, id?} in a binary
// Engine.IO message. The default namespace has the same events as sio-server.mjs:
//   echo(...args, ack?)        ack with exactly the args; without an ack, emit `echo` back
//   join(room, ack?)           ack {room, members}
//   leave(room, ack?)          ack {room, members}
//   broadcast(room, ...data, ack?)  emit `broadcast` ...data to the room, ack the recipient count
// A client speaking the JSON text parser sends text frames this parser cannot read: the
// server closes its connection.
// Emits: {"listening":PORT} on stdout once bound, {"closed":true} on SIGINT/SIGTERM.
// Must not: bind anything but 127.0.0.1, print anything else on stdout.

import { createServer } from 'node:http';
import { Server } from 'socket.io';
import msgpackParser from 'socket.io-msgpack-parser';
import { exit, out, parseArgs } from './lib.mjs';

const args = parseArgs();
const port = Number(args.port ?? 0);
const options = { parser: msgpackParser };
if (args['ping-interval']) options.pingInterval = Number(args['ping-interval']);
if (args['ping-timeout']) options.pingTimeout = Number(args['ping-timeout']);

const http = createServer((_req, res) => {
  res.writeHead(404).end();
});
const sio = new Server(http, options);

/** Splits a trailing ack function off the arguments of an event. */
function splitAck(list) {
  return typeof list.at(-1) === 'function' ? [list.slice(0, -1), list.at(-1)] : [list, null];
}

const members = (room) => sio.of('/').adapter.rooms.get(room)?.size ?? 0;

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
