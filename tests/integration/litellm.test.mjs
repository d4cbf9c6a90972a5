// LiteLLM's config.yaml as LiteLLM users write it, end to end: two `ponder serve` replicas
// behind the router as deployments of one model_name. simple-shuffle (LiteLLM's default)
// splits requests by weight; least-busy sends concurrent requests to the idle replica;
// latency-based-routing prefers the fast replica once it has measured both; an rpm limit
// moves the request to the next deployment; a deployment that answers 404 (a model name
// it does not serve) falls back without opening its breaker; context_window_fallbacks take
// a request that is too long for one model to another; master_key guards the router; a
// file with several mistakes names them all in one run.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer, postJSON, STORIES, BIN } from './helpers.mjs';
import { startFault } from './faults.mjs';

let A, B, slowA, dir;
const routers = [];
const KEY = 'sk-test-master';

const deployment = (name, base, extra = '') =>
  `  - model_name: ${name}\n    litellm_params:\n      model: openai/stories260K\n      api_base: ${base}\n${extra}`;

async function router(yaml, env = {}) {
  const file = path.join(dir, `r${routers.length}.yaml`);
  fs.writeFileSync(file, yaml);
  Object.assign(process.env, env);
  const r = await startServer(['--config', file, '--chatml', '-c', '512', '--parallel', '2']);
  routers.push(r);
  return r;
}

const ask = (r, model, extra = {}) => postJSON(r.base + '/chat/completions',
  { model, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2, temperature: 0, ...extra },
  { Authorization: 'Bearer ' + KEY });

before(async () => {
  const args = ['-m', STORIES, '--chatml', '--parallel', '4', '-c', '512'];
  [A, B] = await Promise.all([startServer(args), startServer(args)]);
  slowA = await startFault(A.url, 'slow');
  slowA.state.delayMs = 250;
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ponder-litellm-'));
});

after(async () => {
  for (const r of routers) assert.equal(await r.stop(), 0);
  await slowA.close();
  assert.equal(await A.stop(), 0);
  assert.equal(await B.stop(), 0);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('simple-shuffle by weight, rpm limits, 404 without a breaker, context-window fallbacks, master_key', async () => {
  const yaml = 'model_list:\n' +
    deployment('chat', A.base, '      weight: 1\n') + deployment('chat', B.base, '      weight: 3\n') +
    deployment('limited', A.base, '      rpm: 2\n      order: 1\n') + deployment('limited', B.base, '      order: 2\n') +
    '  - model_name: wrong\n    litellm_params:\n      model: openai/no-such-model\n      api_base: ' + A.base + '\n      order: 1\n' +
    deployment('wrong', B.base, '      order: 2\n') +
    `  - model_name: short\n    backends: [{local: ${STORIES}, ctx_size: 64, name: short-local}]\n` +
    `  - model_name: long\n    backends: [{local: ${STORIES}, ctx_size: 512, name: long-local}]\n` +
    'litellm_settings:\n  num_retries: 0\n  context_window_fallbacks: [{"short": ["long"]}]\n  allowed_fails: 2\n' +
    '  drop_params: true\n' +
    'general_settings:\n  master_key: os.environ/PONDER_TEST_MASTER\n';
  const r = await router(yaml, { PONDER_TEST_MASTER: KEY });
  assert.match(r.stderr(), /warning: .*litellm_settings\.drop_params: ignored/);

  // master_key is the router's API key
  const noKey = await postJSON(r.base + '/chat/completions', { model: 'chat', messages: [{ role: 'user', content: 'x' }] });
  assert.equal(noKey.status, 401);

  // weights 1:3 — of 60 requests, B takes about 3/4
  const by = {};
  for (let i = 0; i < 60; i++) {
    const x = await ask(r, 'chat');
    assert.equal(x.status, 200, x.body);
    by[x.json.ponder.backend] = (by[x.json.ponder.backend] ?? 0) + 1;
  }
  const shareB = (by['chat/1'] ?? 0) / 60;
  assert.ok(shareB > 0.55 && shareB < 0.92, JSON.stringify(by));
  assert.ok((by['chat/0'] ?? 0) > 0, JSON.stringify(by));

  // rpm: 2 on the first deployment (order 1): the third request in the minute goes on
  const seen = [];
  for (let i = 0; i < 3; i++) seen.push(await ask(r, 'limited'));
  assert.deepEqual(seen.map((x) => x.json.ponder.backend), ['limited/0', 'limited/0', 'limited/1']);
  const skip = seen[2].json.ponder.attempts[0];
  assert.equal(skip.outcome, 'http_429');
  assert.match(skip.message ?? JSON.stringify(skip), /rpm limit/);

  // 404 from a deployment that does not serve the name: the next one answers, every time —
  // allowed_fails 2 would have opened a breaker after two failures that counted
  for (let i = 0; i < 4; i++) {
    const x = await ask(r, 'wrong');
    assert.equal(x.status, 200, x.body);
    assert.deepEqual(x.json.ponder.attempts.map((a) => a.outcome), ['http_auth', 'ok'], JSON.stringify(x.json.ponder));
  }

  // too long for short (64 cells): context_window_fallbacks sends it to long
  const longPrompt = 'Once upon a time there was a little girl who liked to play in the park with her dog. '.repeat(3);
  const cw = await ask(r, 'short', { messages: [{ role: 'user', content: longPrompt }], max_tokens: 4 });
  assert.equal(cw.status, 200, cw.body);
  assert.equal(cw.json.ponder.backend, 'long-local');
  // without a context-window fallback the refusal is the client's answer (400), as before
  const plain = await ask(r, 'long', { messages: [{ role: 'user', content: longPrompt.repeat(8) }], max_tokens: 4 });
  assert.equal(plain.status, 400);
});

test('least-busy sends concurrent requests to the idle deployment; latency-based prefers the fast one', async () => {
  const busy = await router('model_list:\n' + deployment('chat', slowA.base) + deployment('chat', B.base) +
    'router_settings:\n  routing_strategy: least-busy\n');
  // four at once: the slow deployment holds its request, so the others find it busy
  const four = await Promise.all([0, 1, 2, 3].map(() => ask(busy, 'chat')));
  const names = four.map((x) => x.json.ponder.backend);
  assert.ok(names.includes('chat/0') && names.includes('chat/1'), names.join());
  assert.ok(names.filter((n) => n === 'chat/1').length >= 2, names.join());

  const fast = await router('model_list:\n' + deployment('chat', slowA.base) + deployment('chat', B.base) +
    'router_settings:\n  routing_strategy: latency-based-routing\n');
  const order = [];
  for (let i = 0; i < 10; i++) order.push((await ask(fast, 'chat')).json.ponder.backend);
  // once both are measured (untried ones first), the 250 ms slower one is not chosen again
  assert.ok(order.slice(0, 3).includes('chat/0'), order.join());
  assert.deepEqual(order.slice(4), Array(6).fill('chat/1'), order.join());
});

test('a LiteLLM file with several mistakes: every one named in one run, exit 2', () => {
  const bad = path.join(dir, 'bad.yaml');
  fs.writeFileSync(bad, 'model_list:\n  - model_name: a\n    litellm_params:\n      model: anthropic/claude-3\n' +
    '  - model_name: b\n    litellm_params:\n      model: openai/x\n      api_base: http://127.0.0.1:9/v1\n      rpm: many\n' +
    'litellm_settings:\n  num_retrys: 3\nrouter_settings:\n  routing_strategy: fastest\n  timeout: 30\n  timeout: 40\n');
  const r = spawnSync(BIN, ['serve', '--config', bad, '--port', '0'], { encoding: 'utf8', timeout: 10000 });
  assert.equal(r.status, 2);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 5, r.stderr);
  assert.match(r.stderr, /bad\.yaml:4: model_list\[0\]\.litellm_params: provider 'anthropic' is not supported/);
  assert.match(r.stderr, /bad\.yaml:9: model_list\[1\]\.litellm_params\.rpm: expected a number/);
  assert.match(r.stderr, /bad\.yaml:11: litellm_settings\.num_retrys: unknown key/);
  assert.match(r.stderr, /bad\.yaml:13: router_settings\.routing_strategy: 'fastest'/);
  assert.match(r.stderr, /bad\.yaml:15: router_settings\.timeout: given twice \(also line 14\)/);
  assert.ok(!r.stderr.includes('listening'));
});
