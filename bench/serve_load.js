#!/usr/bin/env node
// serve_load.js — load test of `ponder serve`: requests/s and generated tokens/s with
// C concurrent clients (each sends K completions one after another) against servers with
// different --parallel. A benchmark, not a test: it asserts nothing.
//
//   node bench/serve_load.js --bin build/release/ponder -m MODEL.gguf \
//        [--parallel 1,4] [--clients 1,4,16] [--requests 4] [--max-tokens 64] [-t 2] [-c 512] [--json]
//
// Every request is a greedy /v1/completions of a distinct prompt with max_tokens tokens;
// tokens are counted from usage.completion_tokens, time is wall time over the whole level.
'use strict';
const { spawn } = require('node:child_process');
const http = require('node:http');

function args() {
  const a = { bin: 'build/release/ponder', model: null, parallel: [1, 4], clients: [1, 4, 16], requests: 4, maxTokens: 64, threads: 2, ctx: 512, json: false };
  const v = process.argv.slice(2);
  for (let i = 0; i < v.length; i++) {
    const k = v[i], next = () => v[++i];
    if (k === '--bin') a.bin = next();
    else if (k === '-m' || k === '--model') a.model = next();
    else if (k === '--parallel') a.parallel = next().split(',').map(Number);
    else if (k === '--clients') a.clients = next().split(',').map(Number);
    else if (k === '--requests') a.requests = Number(next());
    else if (k === '--max-tokens') a.maxTokens = Number(next());
    else if (k === '-t') a.threads = Number(next());
    else if (k === '-c') a.ctx = Number(next());
    else if (k === '--json') a.json = true;
    else { console.error(`serve_load: unknown option ${k}`); process.exit(2); }
  }
  if (!a.model) { console.error('serve_load: -m MODEL is required'); process.exit(2); }
  return a;
}

function start(a, parallel) {
  return new Promise((resolve, reject) => {
    const p = spawn(a.bin, ['serve', '-m', a.model, '--port', '0', '--parallel', String(parallel), '-t', String(a.threads),
      '-c', String(a.ctx), '--queue', '1024'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => {
      err += d;
      const m = err.match(/listening on (http:\/\/\S+)/);
      if (m) resolve({ url: m[1], proc: p });
    });
    p.on('exit', (code) => reject(new Error(`server exited (${code}): ${err}`)));
  });
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
function post(url, body) {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const req = http.request(url, { method: 'POST', agent, headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) } }, (res) => {
      let s = '';
      res.on('data', (c) => { s += c; });
      res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(s)) : reject(new Error(`${res.statusCode}: ${s}`))));
    });
    req.on('error', reject);
    req.end(data);
  });
}

async function level(a, url, clients) {
  let tokens = 0, n = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: clients }, async (_, c) => {
    for (let k = 0; k < a.requests; k++) {
      const r = await post(url + '/v1/completions', { prompt: `Request ${c}-${k}: once upon a time`, max_tokens: a.maxTokens, temperature: 0 });
      tokens += r.usage.completion_tokens;
      n++;
    }
  }));
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  return { clients, requests: n, tokens, seconds: s, requests_per_s: n / s, tokens_per_s: tokens / s };
}

(async () => {
  const a = args();
  const rows = [];
  for (const parallel of a.parallel) {
    const srv = await start(a, parallel);
    await post(srv.url + '/v1/completions', { prompt: 'warm up', max_tokens: 8 });
    for (const c of a.clients) rows.push({ parallel, ...(await level(a, srv.url, c)) });
    srv.proc.removeAllListeners('exit');
    srv.proc.kill('SIGTERM');
    await new Promise((r) => srv.proc.once('exit', r));
  }
  agent.destroy();
  if (a.json) { console.log(JSON.stringify(rows, null, 2)); return; }
  console.log(`model ${a.model}, ${a.requests} requests per client, max_tokens ${a.maxTokens}, -t ${a.threads}, -c ${a.ctx}`);
  console.log('| --parallel | clients | requests | tokens | seconds | requests/s | tokens/s |');
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of rows)
    console.log(`| ${r.parallel} | ${r.clients} | ${r.requests} | ${r.tokens} | ${r.seconds.toFixed(2)} | ${r.requests_per_s.toFixed(2)} | ${r.tokens_per_s.toFixed(1)} |`);
})().catch((e) => { console.error('serve_load:', e.message); process.exit(1); });
