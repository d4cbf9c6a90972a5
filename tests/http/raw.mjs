// Raw-socket helpers for the HTTP front end's tests (tests/http): requests written byte for
// byte (malformed framing cannot be sent with node:http), answers read until the server
// closes or a quiet period passes, and the status lines split out.
import net from 'node:net';

// Connects (optionally from a given loopback source address) and resolves the socket.
export function connect(url, { localAddress, allowHalfOpen = false } = {}) {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const s = net.connect({ port: Number(u.port), host: u.hostname, localAddress, allowHalfOpen });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

// Collects what the socket receives until it closes (closed: true) or nothing arrives for
// quietMs (closed: false).
export function collect(sock, quietMs = 1500) {
  return new Promise((resolve) => {
    let text = '';
    let timer;
    const done = (closed) => { clearTimeout(timer); sock.removeAllListeners('data'); resolve({ text, closed }); };
    const arm = () => { clearTimeout(timer); timer = setTimeout(() => done(false), quietMs); };
    sock.on('data', (d) => { text += d.toString('latin1'); arm(); });
    sock.once('close', () => done(true));
    sock.once('error', () => {});
    arm();
  });
}

// Writes raw bytes on a fresh connection and collects the answer.
export async function raw(url, bytes, opts = {}) {
  const s = await connect(url);
  s.write(bytes);
  const r = await collect(s, opts.quietMs);
  s.destroy();
  return r;
}

// "HTTP/1.1 NNN" status codes in order of appearance (interim 1xx included).
export function statuses(text) {
  return [...text.matchAll(/HTTP\/1\.[01] (\d{3})/g)].map((m) => Number(m[1]));
}

export function header(text, name) {
  const m = text.match(new RegExp(`^${name}:\\s*([^\\r\\n]*)`, 'im'));
  return m ? m[1] : null;
}

export function jsonBody(text) {
  const i = text.indexOf('\r\n\r\n');
  return JSON.parse(text.slice(i + 4));
}
