#!/usr/bin/env node
// route_overhead.mjs — what the router costs: median wall time (non-streaming) and time to
// the first content chunk (streaming) of the same greedy chat request sent
//   direct      to a `ponder serve` replica,
//   healthy     through `ponder serve --config` to that replica,
//   local       through the router to the same model as its local backend (in-process),
//   serve-m     (with --bin-direct) `ponder serve -m` of --bin: the router over one local
//               backend, against `serve -m` of the other build,
//   refused     through the router, first backend refusing connections, then the replica,
//   http500     first backend answering 500, then the replica,
//   cut         (stream) first backend cut after --cut events, continued on the replica.
// The circuit breaker is off (failures: 0) so every request meets its fault.
// A benchmark, not a test: it asserts nothing.
//
//   node bench/route_overhead.mjs --bin build/release/ponder -m MODEL.gguf [-n 20] [--max-tokens 32] [--cut 6]
//        [--bin-direct OTHER/ponder]
// --bin-direct runs the direct replica from another build (say, before a change to
// `ponder serve -m`), so `local - direct` and `serve-m - direct` compare the two side by side.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

import { startFault, closedPort } from '../tests/integration/faults.mjs';

const a = { bin: 'build/release/ponder', binDirect: null, model: null, n: 20, maxTokens: 32, cut: 6 };
const v = process.argv.slice(2);
for (let i = 0; i < v.length; i++) {
  const k = v[i], next = () => v[++i];
  if (k === '--bin') a.bin = next();
  else if (k === '--bin-direct') a.binDirect = next();
  else if (k === '-m') a.model = next();
  else if (k === '-n') a.n = Number(next());
  else if (k === '--max-tokens') a.maxTokens = Number(next());
  else if (k === '--cut') a.cut = Number(next());
  else { console.error(`route_overhead: unknown option ${k}`); process.exit(2); }
}
if (!a.model) { console.error('route_overhead: -m MODEL is required'); process.exit(2); }


function serve(args, bin = a.bin) {
  return new Promise((resolve, reject) => {
    const p = spawn(bin, ['serve', '--port', '0', '-t', '1', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => {
      err += d;
      const m = err.match(/listening on (http:\/\/\S+)/);
      if (m) resolve({ url: m[1], proc: p });
    });
    p.on('exit', (c) => reject(new Error(`serve exited ${c}: ${err}`)));
  });
}

function post(url, body) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let first = null;
    const req = http.request(url, { method: 'POST', agent: false, headers: { 'Content-Type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (d) => {
        text += d;
        if (first === null && body.stream && /"content":"[^"]/.test(text)) first = performance.now() - t0;
      });
      res.on('end', () => resolve({ status: res.statusCode, ms: performance.now() - t0, ttft: first, text }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

const median = (xs) => { const s = [...xs].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };

const args = ['-m', a.model, '--chatml', '--parallel', '2', '-c', '512'];
const B = await serve(args, a.binDirect ?? a.bin);
const fault500 = await startFault(B.url, '500');
const cut = await startFault(B.url, 'drop');
cut.state.n = a.cut;
const refused = await closedPort();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ponder-route-bench-'));
const id = path.basename(a.model, '.gguf');
const rb = (base) => `      - {api_base: "${base}/v1", model: ${id}}\n`;
fs.writeFileSync(path.join(dir, 'r.yaml'),
  'model_list:\n' +
  `  - model_name: healthy\n    backends:\n${rb(B.url)}` +
  `  - model_name: local\n    backends:\n      - {local: "${path.resolve(a.model)}", parallel: 2, ctx_size: 512}\n` +
  `  - model_name: refused\n    backends:\n${rb(`http://127.0.0.1:${refused}`)}${rb(B.url)}` +
  `  - model_name: http500\n    backends:\n${rb(fault500.url)}${rb(B.url)}` +
  `  - model_name: cut\n    backends:\n${rb(cut.url)}${rb(B.url)}` +
  'router_settings:\n  circuit_breaker: {failures: 0}\n');
const R = await serve(['--config', path.join(dir, 'r.yaml'), '--chatml']);
const S = a.binDirect ? await serve(args) : null;

const req = { messages: [{ role: 'user', content: 'Tell me a story.' }], max_tokens: a.maxTokens, temperature: 0 };
const cases = [['direct', B.url, id], ...(S ? [['serve-m', S.url, id]] : []), ['healthy', R.url, 'healthy'], ['local', R.url, 'local'],
  ['refused', R.url, 'refused'], ['http500', R.url, 'http500'], ['cut', R.url, 'cut']];
const acc = Object.fromEntries(cases.map(([name]) => [name, { whole: [], ttft: [], stream: [] }]));
// cases interleaved round by round, after two unmeasured rounds, so a noisy machine
// (or a cold page cache) weighs on every case alike
// CPU time (user + system, Linux /proc) of the process answering: direct's is the replica,
// local's the router, which then runs the engine and the routing both; requests go one at
// a time, so the difference is the routing's CPU cost, which a busy machine disturbs less
// than wall time
const cpuMs = (pid) => {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) * 1000 / 100; /* clock ticks of 10 ms (USER_HZ) */
  } catch { return NaN; }
};
const cpu = { direct: { whole: 0, stream: 0 }, local: { whole: 0, stream: 0 }, 'serve-m': { whole: 0, stream: 0 } };
const pidOf = { direct: B.proc.pid, local: R.proc.pid, 'serve-m': S?.proc.pid };
for (let i = -2; i < a.n; i++) {
  for (const [name, url, model] of cases) {
    const c0 = cpuMs(pidOf[name]);
    if (name !== 'cut') {
      const w = await post(url + '/v1/chat/completions', { ...req, model });
      if (w.status !== 200) throw new Error(`${name}: HTTP ${w.status}: ${w.text}`);
      if (i >= 0) acc[name].whole.push(w.ms);
    }
    const c1 = cpuMs(pidOf[name]);
    const s = await post(url + '/v1/chat/completions', { ...req, model, stream: true });
    if (s.status !== 200 || !s.text.includes('[DONE]')) throw new Error(`${name}: stream failed: ${s.text.slice(-300)}`);
    if (i >= 0) { acc[name].ttft.push(s.ttft); acc[name].stream.push(s.ms); }
    if (i >= 0 && cpu[name]) { cpu[name].whole += c1 - c0; cpu[name].stream += cpuMs(pidOf[name]) - c1; }
  }
}
// the router's cost for a local backend: per round, the routed request's time minus the
// direct one's (both sent back to back, so a busy machine weighs on both alike)
const diff = (k, key) => median(acc[k][key].map((x, i) => x - acc.direct[key][i]));
const rows = cases.map(([name]) => ({ case: name, whole_ms: acc[name].whole.length ? median(acc[name].whole) : null,
  ttft_ms: median(acc[name].ttft), stream_ms: median(acc[name].stream) }));
console.log(`median of ${a.n} greedy chat requests, max_tokens ${a.maxTokens}, ${id}`);
console.log('case      whole_ms  ttft_ms  stream_ms');
for (const r of rows)
  console.log(`${r.case.padEnd(9)} ${(r.whole_ms?.toFixed(2) ?? '-').padStart(8)} ${r.ttft_ms.toFixed(2).padStart(8)} ${r.stream_ms.toFixed(2).padStart(10)}`);
const cpuDiff = (k, key) => ((cpu[k][key] - cpu.direct[key]) / a.n).toFixed(2);
for (const k of S ? ['local', 'serve-m'] : ['local']) {
  console.log(`${k} - direct, median of per-round differences: whole ${diff(k, 'whole').toFixed(2)} ms, ` +
    `ttft ${diff(k, 'ttft').toFixed(2)} ms, stream ${diff(k, 'stream').toFixed(2)} ms`);
  console.log(`${k} - direct, CPU ms per request (mean): whole ${cpuDiff(k, 'whole')}, stream ${cpuDiff(k, 'stream')} ` +
    `(direct: whole ${(cpu.direct.whole / a.n).toFixed(2)}, stream ${(cpu.direct.stream / a.n).toFixed(2)})`);
}
for (const p of [R.proc, B.proc, S?.proc]) p?.kill('SIGTERM');
await fault500.close();
await cut.close();
fs.rmSync(dir, { recursive: true, force: true });

