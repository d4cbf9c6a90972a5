#!/usr/bin/env node
// route_balance.mjs — load balancing across replicas: generated tokens/s with C concurrent
// clients through the router over one `ponder serve` replica, and over two replicas as
// deployments of one model_name (LiteLLM's form; --strategy simple-shuffle, least-busy,
// latency-based-routing or usage-based-routing). Each replica runs with -t 1, so two of
// them can use two cores where one uses one. A benchmark, not a test: it asserts nothing.
//
//   node bench/route_balance.mjs --bin build/release/ponder -m MODEL.gguf \
//        [--clients 16] [--requests 4] [--max-tokens 64] [--parallel 8] [--strategy least-busy] [--rounds 2] [--json]
//
// Rounds alternate one and two replicas (so a busy machine disturbs both alike); each
// round's tokens/s is usage.completion_tokens over the wall time of all its requests.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

function parseArgs() {
  const a = { bin: 'build/release/ponder', model: null, clients: 16, requests: 4, maxTokens: 64, parallel: 8,
    strategy: 'least-busy', rounds: 2, json: false };
  const v = process.argv.slice(2);
  for (let i = 0; i < v.length; i++) {
    const k = v[i], next = () => v[++i];
    if (k === '--bin') a.bin = next();
    else if (k === '-m' || k === '--model') a.model = next();
    else if (k === '--clients') a.clients = Number(next());
    else if (k === '--requests') a.requests = Number(next());
    else if (k === '--max-tokens') a.maxTokens = Number(next());
    else if (k === '--parallel') a.parallel = Number(next());
    else if (k === '--strategy') a.strategy = next();
    else if (k === '--rounds') a.rounds = Number(next());
    else if (k === '--json') a.json = true;
    else { console.error(`route_balance: unknown option ${k}`); process.exit(2); }
  }
  if (!a.model) { console.error('route_balance: -m MODEL is required'); process.exit(2); }
  return a;
}

function start(bin, args) {
  return new Promise((resolve, reject) => {
    const proc = spawn(bin, ['serve', '--port', '0', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    proc.stderr.on('data', (d) => {
      err += d;
      const m = err.match(/listening on (http:\/\/\S+)/);
      if (m) resolve({ proc, url: m[1], base: m[1] + '/v1' });
    });
    proc.on('exit', (c) => reject(new Error(`serve exited ${c}: ${err}`)));
  });
}

async function level(base, a) {
  let tokens = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: a.clients }, async (_, c) => {
    for (let k = 0; k < a.requests; k++) {
      const r = await fetch(base + '/completions', {
        method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ model: 'chat', prompt: `Client ${c} story ${k}: Once upon a time`, max_tokens: a.maxTokens, temperature: 0 }),
      });
      const j = await r.json();
      if (!r.ok) throw new Error(JSON.stringify(j));
      tokens += j.usage.completion_tokens;
    }
  }));
  return tokens / ((performance.now() - t0) / 1000);
}

const a = parseArgs();
const common = ['-m', a.model, '--alias', 'chat', '--parallel', String(a.parallel), '-t', '1', '-c', '512'];
const [r1, r2] = await Promise.all([start(a.bin, common), start(a.bin, common)]);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'route-balance-'));
const dep = (b) => `  - model_name: chat\n    litellm_params: {model: openai/chat, api_base: "${b}", timeout: 600}\n`;
fs.writeFileSync(path.join(dir, 'one.yaml'), 'model_list:\n' + dep(r1.base));
fs.writeFileSync(path.join(dir, 'two.yaml'), 'model_list:\n' + dep(r1.base) + dep(r2.base) +
  `router_settings:\n  routing_strategy: ${a.strategy}\n`);
const one = await start(a.bin, ['--config', path.join(dir, 'one.yaml')]);
const two = await start(a.bin, ['--config', path.join(dir, 'two.yaml')]);
const res = { one: [], two: [] };
await level(one.base, { ...a, requests: 1 }); // warm-up
await level(two.base, { ...a, requests: 1 });
for (let i = 0; i < a.rounds; i++) {
  res.one.push(await level(one.base, a));
  res.two.push(await level(two.base, a));
}
for (const s of [one, two, r1, r2]) s.proc.kill('SIGTERM');
fs.rmSync(dir, { recursive: true, force: true });
const mean = (x) => x.reduce((p, q) => p + q, 0) / x.length;
const out = { clients: a.clients, requests: a.requests, max_tokens: a.maxTokens, strategy: a.strategy,
  one_replica_tps: mean(res.one), two_replicas_tps: mean(res.two), ratio: mean(res.two) / mean(res.one), rounds: res };
if (a.json) console.log(JSON.stringify(out));
else console.log(`${a.clients} clients × ${a.requests} requests × ${a.maxTokens} tokens, ${a.strategy}: ` +
  `one replica ${out.one_replica_tps.toFixed(1)} tokens/s, two ${out.two_replicas_tps.toFixed(1)} tokens/s, ` +
  `${out.ratio.toFixed(2)}×`);
