// A `ws` 8 echo server: the third-party raw WebSocket peer of swarmbench's tests.
//
// Usage: node ws-echo-server.mjs [--port 0] [--max-payload BYTES]
// Receives: WebSocket connections on 127.0.0.1 (any path). Every text or binary message is
// sent back unchanged, with the same opcode; `ws` itself closes with 1007 on invalid UTF-8 and
// 1009 above --max-payload (its default: 100 MiB).
// Emits: {"listening":PORT} on stdout once bound, {"closed":true} on SIGINT/SIGTERM.
// Must not: bind anything but 127.0.0.1, print anything else on stdout.

import { WebSocketServer } from 'ws';
import { exit, out, parseArgs } from './lib.mjs';

const args = parseArgs();
const options = { host: '127.0.0.1', port: Number(args.port ?? 0) };
if (args['max-payload']) options.maxPayload = Number(args['max-payload']);
const wss = new WebSocketServer(options);

wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => ws.terminate());
});
wss.on('listening', () => out({ listening: wss.address().port }));

function stop() {
  for (const ws of wss.clients) ws.close(1001, 'server going away');
  wss.close(() => {
    out({ closed: true });
    exit(0);
  });
  setTimeout(() => exit(0), 2000).unref();
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
