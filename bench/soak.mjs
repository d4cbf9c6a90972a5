#!/usr/bin/env node
// soak.mjs — mixed traffic against `ponder serve -m` or the router (`--config`) for N minutes
// (issue 18): streams read to the end, whole answers, clients that cancel (a stream cut
// after its first chunk, a whole request dropped after 30 ms), bad requests (malformed JSON,
// unknown fields' neighbours with wrong types, ambiguous framing, an oversized declared
// body, a missing Host) and slowloris clients that trickle their headers. Reports the
// server's RSS over time (/proc/PID/status), outcomes by kind (expected refusals apart
// from real errors), and p50/p99 latency of the good requests. A benchmark: it asserts
// nothing, but exits 1 when a good request failed or the server died.
//
//   node bench/soak.mjs --bin build/release/ponder (-m MODEL.gguf | --config FILE.yaml)
//        [--minutes 10] [--workers 6] [--slow 50] [--max-tokens 32] [--md bench/results/soak.md]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';

const a = { bin: 'build/release/ponder', model: null, config: null, minutes: 10, workers: 6, slow: 50, maxTokens: 32, md: null };
const v = process.argv.slice(2);
for (let i = 0; i < v.length; i++) {
  const k = v[i], next = () => v[++i];
  if (k === '--bin') a.bin = next();
  else if (k === '-m') a.model = next();
  else if (k === '--config') a.config = next();
  else if (k === '--minutes') a.minutes = Number(next());
  else if (k === '--workers') a.workers = Number(next());
  else if (k === '--slow') a.slow = Number(next());
  else if (k === '--max-tokens') a.maxTokens = Number(next());
  else if (k === '--md') a.md = next();
  else { console.error(`soak: unknown option ${k}`); process.exit(2); }
}
if (!a.model === !a.config) { console.error('soak: give -m MODEL or --config FILE'); process.exit(2); }

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function serve() {
  const args = ['serve', '--port', '0', '-t', '1', '--chatml', '--parallel', '4', '-c', '1024',
    ...(a.model ? ['-m', a.model] : ['--config', a.config])];
  return new Promise((resolve, reject) => {
    const p = spawn(a.bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => {
      err += d;
      const m = err.match(/listening on (http:\/\/[^\s]+)/);
      if (m) resolve({ p, url: m[1] });
    });
    p.on('exit', (c) => reject(new Error(`server exited ${c}: ${err}`)));
  });
}

const { p: proc, url } = await serve();
const u = new URL(url);
const rssMB = () => {
  try { return Number(fs.readFileSync(`/proc/${proc.pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]) / 1024; } catch { return NaN; }
};
// the served model's id (the router's first model)
const models = await new Promise((res) => http.get(url + '/v1/models', (r) => { let b = ''; r.on('data', (d) => (b += d)); r.on('end', () => res(JSON.parse(b))); }));
const model = models.data[0].id;

const counts = {};   // outcome kind -> count
const lat = { whole: [], ttft: [], stream: [] };
const count = (k) => { counts[k] = (counts[k] ?? 0) + 1; };
let failedGood = 0;

function post(path, obj, { abortMs, stream } = {}) {
  return new Promise((resolve) => {
    const body = JSON.stringify(obj);
    const t0 = performance.now();
    let ttft = null;
    const req = http.request(url + path, { method: 'POST', agent: false, headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } }, (res) => {
      let text = '';
      res.on('data', (d) => {
        if (ttft === null) ttft = performance.now() - t0;
        text += d;
        if (stream && abortMs === 0 && text.includes('data: ')) { req.destroy(); resolve({ status: res.statusCode, cancelled: true }); }
      });
      res.on('end', () => resolve({ status: res.statusCode, text, ms: performance.now() - t0, ttft }));
      res.on('error', () => resolve({ status: res.statusCode, cancelled: true }));
    });
    req.on('error', (e) => resolve({ status: 0, error: e.code || e.message }));
    if (abortMs > 0) setTimeout(() => { req.destroy(); resolve({ status: -1, cancelled: true }); }, abortMs);
    req.end(body);
  });
}

function rawOnce(bytes, quietMs = 2000) {
  return new Promise((resolve) => {
    const s = net.connect(Number(u.port), u.hostname);
    let text = '';
    const t = setTimeout(() => { s.destroy(); resolve(text); }, quietMs);
    s.on('data', (d) => (text += d));
    s.on('close', () => { clearTimeout(t); resolve(text); });
    s.on('error', () => {});
    s.write(bytes);
  });
}

const chat = (content, extra = {}) => ({ model, messages: [{ role: 'user', content }], max_tokens: a.maxTokens, temperature: 0.7, ...extra });
const stories = ['Once upon a time', 'The little dog', 'Lily wanted to', 'One day, a bird', 'Tom and Sue'];
let seq = 0;

async function goodWhole() {
  const r = await post('/v1/chat/completions', chat(stories[seq++ % 5]));
  if (r.status === 200) { count('whole 200'); lat.whole.push(r.ms); } else if (r.status === 429) count('whole 429 (busy)'); else { count(`whole ${r.status || r.error}`); failedGood++; }
}
async function goodStream() {
  const r = await post('/v1/chat/completions', chat(stories[seq++ % 5], { stream: true }), { stream: true });
  if (r.status === 200 && r.text.includes('data: [DONE]') && !r.text.includes('"error"')) { count('stream 200'); lat.stream.push(r.ms); lat.ttft.push(r.ttft); }
  else if (r.status === 429) count('stream 429 (busy)'); else { count(`stream ${r.status || r.error} ${r.text?.includes('"error"') ? 'error event' : ''}`.trim()); failedGood++; }
}
async function cancelStream() {
  await post('/v1/chat/completions', chat('Once upon a time', { stream: true, max_tokens: 200 }), { stream: true, abortMs: 0 });
  count('cancel: stream cut after its first chunk');
}
async function cancelWhole() {
  await post('/v1/completions', { model, prompt: 'Once upon a time', max_tokens: 200 }, { abortMs: 30 });
  count('cancel: whole dropped after 30 ms');
}
const badBodies = [
  ['/v1/chat/completions', '{"messages": ['],
  ['/v1/chat/completions', JSON.stringify({ messages: [{ role: 'user', content: 'x' }], temperature: 'hot' })],
  ['/v1/completions', JSON.stringify({ prompt: 'x', max_tokens: -1 })],
  ['/v1/chat/completions', JSON.stringify({ messages: 'nope' })],
];
async function bad() {
  const [path, body] = badBodies[seq++ % badBodies.length];
  const r = await new Promise((resolve) => {
    const req = http.request(url + path, { method: 'POST', agent: false, headers: { 'Content-Type': 'application/json' } }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); });
    req.on('error', () => resolve(0));
    req.end(body);
  });
  count(r === 400 ? 'bad body: 400 (expected)' : `bad body: ${r} (unexpected)`);
}
const badFraming = [
  'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n',
  'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 40\r\n\r\n{}',
  'POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n',
  'GET /health HTTP/1.1\r\n\r\n',
  'POST /v1/completions HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1000000000000000000\r\n\r\n',
];
async function framing() {
  const text = await rawOnce(badFraming[seq++ % badFraming.length]);
  const st = [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]);
  count(st.length === 1 && (st[0] === '400' || st[0] === '413') ? `bad framing: ${st[0]} (expected)` : `bad framing: [${st}] (unexpected)`);
}

// slowloris clients, kept at --slow open: each trickles header bytes until the server cuts it
let slowOpen = 0;
function slowClient() {
  slowOpen++;
  const s = net.connect(Number(u.port), u.hostname);
  const t0 = Date.now();
  let timer;
  s.on('connect', () => { s.write('POST /v1/completions HTTP/1.1\r\nHost: x\r\n'); timer = setInterval(() => s.write('X'), 1000); });
  s.on('error', () => {});
  s.on('close', () => { clearInterval(timer); slowOpen--; count('slowloris: cut by the server'); lat.slowCut = (lat.slowCut ?? []); lat.slowCut.push(Date.now() - t0); });
}

const kinds = [goodWhole, goodWhole, goodStream, goodStream, cancelStream, cancelWhole, bad, framing];
const t0 = Date.now(), end = t0 + a.minutes * 60000;
const rss = [{ t: 0, mb: rssMB() }];
const sampler = setInterval(() => rss.push({ t: (Date.now() - t0) / 1000, mb: rssMB() }), 10000);
const slowTopUp = setInterval(() => { while (slowOpen < a.slow && Date.now() < end) slowClient(); }, 500);
let died = false;
proc.on('exit', () => { died = true; });
await Promise.all(Array.from({ length: a.workers }, async (_, w) => {
  let i = w;
  while (Date.now() < end && !died) await kinds[i++ % kinds.length]();
}));
clearInterval(slowTopUp);
clearInterval(sampler);
rss.push({ t: (Date.now() - t0) / 1000, mb: rssMB() });
await sleep(200);
// the server's own count, to set beside the client's
const prom = await new Promise((res) => http.get(url + '/metrics', (r) => { let b = ''; r.on('data', (d) => (b += d)); r.on('end', () => res(b)); }).on('error', () => res('')));
const served = prom.split('\n').filter((l) => /^ponder_(requests_total|requests_cancelled_total|requests_failed_total|connections_timed_out_total|completion_tokens_total)[ {]/.test(l));

const pct = (xs, p) => { if (!xs?.length) return NaN; const s = [...xs].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };
const f = (x) => (Number.isFinite(x) ? x.toFixed(0) : '-');
const lines = [];
lines.push(`Against \`ponder serve ${a.model ? '-m ' + a.model.split('/').pop() : '--config ' + a.config.split('/').pop()}\` (--parallel 4, -c 1024, -t 1), ${a.minutes} min, ${a.workers} workers, ${a.slow} slowloris clients held open, max_tokens ${a.maxTokens}.`);
lines.push('', '| RSS | start | min | max | end |', '| --- | --- | --- | --- | --- |');
const mbs = rss.map((r) => r.mb);
lines.push(`| MB | ${mbs[0].toFixed(1)} | ${Math.min(...mbs).toFixed(1)} | ${Math.max(...mbs).toFixed(1)} | ${mbs[mbs.length - 1].toFixed(1)} |`);
lines.push('', `RSS every 10 s (MB): ${rss.map((r) => r.mb.toFixed(0)).join(' ')}`);
lines.push('', '| latency (ms) | n | p50 | p99 |', '| --- | --- | --- | --- |');
lines.push(`| whole chat answer | ${lat.whole.length} | ${f(pct(lat.whole, 0.5))} | ${f(pct(lat.whole, 0.99))} |`);
lines.push(`| stream, first byte | ${lat.ttft.length} | ${f(pct(lat.ttft, 0.5))} | ${f(pct(lat.ttft, 0.99))} |`);
lines.push(`| stream, to [DONE] | ${lat.stream.length} | ${f(pct(lat.stream, 0.5))} | ${f(pct(lat.stream, 0.99))} |`);
lines.push(`| slowloris, connect to cut | ${lat.slowCut?.length ?? 0} | ${f(pct(lat.slowCut, 0.5))} | ${f(pct(lat.slowCut, 0.99))} |`);
lines.push('', '| outcome | count |', '| --- | --- |');
for (const k of Object.keys(counts).sort()) lines.push(`| ${k} | ${counts[k]} |`);
lines.push('', 'The server\'s /metrics at the end:', '', '```', ...served, '```');
lines.push('', `Good requests that failed: ${failedGood}. Server ${died ? 'DIED' : 'alive at the end'}.`);
const text = lines.join('\n');
console.log(text);
if (a.md) fs.writeFileSync(a.md, text + '\n');
proc.kill('SIGTERM');
process.exit(failedGood || died ? 1 : 0);
