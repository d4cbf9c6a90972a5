#!/usr/bin/env node
// request_rss.mjs — the peak RSS one completions request costs `ponder serve` (issue 18:
// memory per request must grow with its own tokens, not with a product of choices and
// tokens). Starts a fresh server (-c 1024, --parallel 4, -t 1), warms it with one tiny
// request, then sends one request of P prompts x n choices x max_tokens (with logprobs K
// when K > 0) and reports the growth of VmHWM (/proc/PID/status) and the answer's size.
//
//   node bench/request_rss.mjs --bin build/release/ponder -m MODEL.gguf [--prompts 128] [-n 1] [--max-tokens 1000] [--logprobs 5]
import { spawn } from 'node:child_process';
import fs from 'node:fs';

const a = { bin: 'build/release/ponder', model: null, prompts: 128, n: 1, maxTokens: 1000, logprobs: 5 };
const v = process.argv.slice(2);
for (let i = 0; i < v.length; i++) {
  const k = v[i], next = () => v[++i];
  if (k === '--bin') a.bin = next();
  else if (k === '-m') a.model = next();
  else if (k === '--prompts') a.prompts = Number(next());
  else if (k === '-n') a.n = Number(next());
  else if (k === '--max-tokens') a.maxTokens = Number(next());
  else if (k === '--logprobs') a.logprobs = Number(next());
  else { console.error(`request_rss: unknown option ${k}`); process.exit(2); }
}
if (!a.model) { console.error('request_rss: -m MODEL is required'); process.exit(2); }

const p = spawn(a.bin, ['serve', '-m', a.model, '--port', '0', '-t', '1', '-c', '1024', '--parallel', '4'], { stdio: ['ignore', 'ignore', 'pipe'] });
let err = '';
const url = await new Promise((res, rej) => {
  p.stderr.on('data', (d) => { err += d; const m = err.match(/listening on (\S+)/); if (m) res(m[1]); });
  p.on('exit', (c) => rej(new Error(`server exited ${c}: ${err}`)));
});
const hwm = () => Number(fs.readFileSync(`/proc/${p.pid}/status`, 'utf8').match(/VmHWM:\s+(\d+)/)[1]) / 1024;
await fetch(url + '/v1/completions', { method: 'POST', body: JSON.stringify({ prompt: 'Once', max_tokens: 4 }) });
const before = hwm();
const t0 = Date.now();
const body = { prompt: Array.from({ length: a.prompts }, (_, i) => `Story ${i}: once upon a time`), n: a.n, max_tokens: a.maxTokens, temperature: 1, seed: 1 };
if (a.logprobs > 0) body.logprobs = a.logprobs;
const r = await fetch(url + '/v1/completions', { method: 'POST', body: JSON.stringify(body) });
const text = await r.text();
const after = hwm();
const j = JSON.parse(text);
console.log(`${a.prompts} prompts x n ${a.n} x max_tokens ${a.maxTokens}, logprobs ${a.logprobs}: status ${r.status}, ` +
  `${j.usage?.completion_tokens} tokens in ${((Date.now() - t0) / 1000).toFixed(1)} s, answer ${(text.length / 1e6).toFixed(1)} MB, ` +
  `peak RSS ${before.toFixed(1)} -> ${after.toFixed(1)} MB (+${(after - before).toFixed(1)} MB)`);
p.kill('SIGTERM');
