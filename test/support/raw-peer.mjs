// A scriptable, misbehaving supervisor-socket peer for the threat tests. It
// runs as an unprivileged uid (under setpriv, in its own session) so that the
// helper sees that uid and this pid through SO_PEERCRED. Commands arrive as
// JSON lines on stdin; everything that happens goes out as JSON lines on stdout.
//
//   {op:'open', id}                      open connection `id` (ws+unix://SOCKET:/)
//   {op:'send', id, text}                send one text frame
//   {op:'binary', id, base64}            send one binary frame
//   {op:'flood', id, text, count}        send `count` text frames at once
//   {op:'close', id}                     close connection `id`
//   {op:'spawn', tag, file, args, stdin?} start a child process (our child: ppid is this pid)
//
//   {ev:'ready', pid}   {ev:'open', id}   {ev:'message', id, text}
//   {ev:'close', id, code, reason}        {ev:'error', id, message}
//   {ev:'spawned', tag, pid}              {ev:'spawn-error', tag, message}
import { spawn } from 'node:child_process';
import { openSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { WebSocket } from 'ws';

const socketPath = process.argv[2];
const sockets = new Map();
const out = (event) => process.stdout.write(`${JSON.stringify(event)}\n`);

function open(id) {
  const ws = new WebSocket(`ws+unix://${socketPath}:/`, { perMessageDeflate: false, maxPayload: 1 << 20 });
  sockets.set(id, ws);
  ws.on('open', () => out({ ev: 'open', id }));
  ws.on('message', (data, isBinary) => out({ ev: 'message', id, text: isBinary ? null : data.toString('utf8') }));
  ws.on('close', (code, reason) => out({ ev: 'close', id, code, reason: reason.toString() }));
  ws.on('error', (error) => out({ ev: 'error', id, message: error.message }));
}

const children = [];
createInterface({ input: process.stdin }).on('line', (line) => {
  const c = JSON.parse(line);
  const ws = sockets.get(c.id);
  switch (c.op) {
    case 'open':
      return open(c.id);
    case 'send':
      return ws.send(c.text);
    case 'binary':
      return ws.send(Buffer.from(c.base64, 'base64'), { binary: true });
    case 'flood':
      for (let i = 0; i < c.count; i++) ws.send(c.text);
      return undefined;
    case 'close':
      return ws.close(1000);
    case 'spawn': {
      // stdin: the FIFO named (so it outlives us), or a pipe open while we live; a child reading it (passwd) waits.
      const child = spawn(c.file, c.args, { stdio: [c.stdin ? openSync(c.stdin, 'r') : 'pipe', 'ignore', 'ignore'] });
      children.push(child);
      child.once('spawn', () => out({ ev: 'spawned', tag: c.tag, pid: child.pid }));
      child.once('error', (error) => out({ ev: 'spawn-error', tag: c.tag, message: error.message }));
      return undefined;
    }
    default:
      throw new Error(`unknown op ${c.op}`);
  }
});
process.stdin.on('end', () => process.exit(0));
out({ ev: 'ready', pid: process.pid });
