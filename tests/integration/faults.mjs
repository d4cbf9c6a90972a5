// A fault-injecting OpenAI-compatible server for the router's tests: in front of a real
// `ponder serve`, it answers each request according to its current mode —
//   ok            proxy to the upstream unchanged
//   hang          read the request, never answer (a stuck backend)
//   500 / 429     an OpenAI-shaped error (429 with Retry-After: state.retryAfter)
//   429once       429 for the first request, then ok
//   drop          proxy a stream, but cut the connection after state.n SSE events
//   stall         proxy a stream, but after state.n SSE events send nothing more (the
//                 connection stays open: a backend stuck mid-answer)
//   keepalive     as stall, but the stuck backend sends an SSE comment (": keep-alive")
//                 every 100 ms: traffic that is not progress
//   slow          proxy unchanged after state.delayMs (a busy or distant replica)
// state.count counts the requests it received (to see a circuit breaker skip it);
// state.auth is the last request's Authorization header.
import { spawn } from 'node:child_process';
import http from 'node:http';

export function startFault(upstream, mode = 'ok') {
  const state = { mode, n: 3, retryAfter: 1, count: 0, delayMs: 300 };
  const sockets = new Set();
  const srv = http.createServer((req, res) => {
    const parts = [];
    req.on('data', (c) => parts.push(c));
    req.on('end', () => {
      state.count++;
      state.auth = req.headers.authorization;
      const body = Buffer.concat(parts);
      let m = state.mode;
      if (m === '429once') { m = '429'; state.mode = 'ok'; }
      if (m === 'hang') return;
      if (m === '500' || m === '429') {
        const h = { 'Content-Type': 'application/json' };
        if (m === '429') h['Retry-After'] = String(state.retryAfter);
        res.writeHead(Number(m), h);
        res.end(JSON.stringify({ error: { message: `injected ${m}`, type: m === '429' ? 'requests' : 'server_error', param: null, code: null } }));
        return;
      }
      const proxy = () => {
      const up = http.request(upstream + req.url, {
        method: 'POST', agent: false,
        headers: { 'Content-Type': 'application/json', 'Content-Length': body.length },
      }, (ur) => {
        res.writeHead(ur.statusCode, { 'Content-Type': ur.headers['content-type'] || 'application/json' });
        if (m !== 'drop' && m !== 'stall' && m !== 'keepalive') { ur.pipe(res); return; }
        let buf = Buffer.alloc(0);
        let sent = 0;
        ur.on('data', (d) => {
          buf = Buffer.concat([buf, d]);
          for (let i; (i = buf.indexOf('\n\n')) >= 0;) {
            const ev = buf.subarray(0, i + 2);
            buf = buf.subarray(i + 2);
            if (ev[0] === 0x3a) continue; // a keep-alive comment is no event
            res.write(ev);
            if (++sent >= state.n && (m === 'stall' || m === 'keepalive')) {
              // nothing more comes, and the socket to the router stays open
              ur.removeAllListeners('data');
              ur.removeAllListeners('end');
              ur.resume(); // the upstream's remaining bytes are read and dropped
              if (m === 'keepalive') {
                const t = setInterval(() => res.write(': keep-alive\n\n'), 100);
                res.on('close', () => clearInterval(t));
              }
              return;
            }
            if (sent >= state.n) {
              // the connection dies mid-answer: what was written is flushed, then the
              // socket closes without the terminating chunk or [DONE]
              res.socket.end();
              ur.destroy();
              return;
            }
          }
        });
        ur.on('end', () => res.end());
      });
      up.on('error', () => res.socket?.destroy());
      up.end(body);
      };
      if (m === 'slow') setTimeout(proxy, state.delayMs); else proxy();
    });
  });
  srv.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  return new Promise((resolve) => {
    srv.listen(0, '127.0.0.1', () => {
      const url = `http://127.0.0.1:${srv.address().port}`;
      resolve({
        url, base: url + '/v1', state,
        close: () => new Promise((r) => { for (const s of sockets) s.destroy(); srv.close(() => r()); }),
      });
    });
  });
}

// A loopback port nothing listens on (connection refused) — until someone binds it:
// blackholePort().refused stays refused.
export function closedPort() {
  return new Promise((resolve) => {
    const s = http.createServer();
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

// Two loopback ports held by a small python3 process (Node can do neither):
//   port     connecting hangs (a connect timeout): a listener with a backlog of 0 that
//            never accepts, its queue filled at once;
//   refused  connecting is refused: bound but not listening, so no other server (say the
//            router's own in-process backends on port 0) can be given it meanwhile.
// Resolves { port, refused, stop() }.
export function blackholePort() {
  const py = `
import socket, sys, time
s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(0)
port = s.getsockname()[1]
fill = []
for i in range(3):
    c = socket.socket(); c.setblocking(False)
    try: c.connect(('127.0.0.1', port))
    except BlockingIOError: pass
    fill.append(c)
r = socket.socket(); r.bind(('127.0.0.1', 0))
print(port, r.getsockname()[1], flush=True)
sys.stdin.read()
`;
  return new Promise((resolve, reject) => {
    const p = spawn('python3', ['-c', py], { stdio: ['pipe', 'pipe', 'inherit'] });
    p.on('error', reject);
    let out = '';
    p.stdout.on('data', (d) => {
      out += d;
      if (!out.includes('\n')) return; // the whole line, however the pipe splits it
      const [port, refused] = out.trim().split(/\s+/).map(Number);
      resolve({ port, refused, stop: () => { p.stdin.end(); p.kill(); } });
    });
  });
}
