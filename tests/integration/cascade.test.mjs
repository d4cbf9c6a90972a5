// Cascade routes end to end: `ponder serve --config` with a two-stage cascade over two tiny
// local models. A threshold nobody reaches always escalates, a threshold of 0 never does;
// the ponder object names the answering stage and why, with per-stage and total tokens,
// FLOPs, wall time and dollars; /metrics counts answers and escalations per stage; a
// stream is the accepted answer sent once decided; when the last stage fails the rejected
// stage-1 answer is returned (Plan B). `ponder calibrate` on a few items writes its CSVs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { startServer, postJSON, metrics, parseSSE, STORIES, BIN } from './helpers.mjs';

let router, client, dir, cfg;

const stage1 = (accept) => `      - {model: small, strategy: "sc:2", cue: false, temperature: 0.9, accept_if: ${accept}}\n`;
const YAML = 'model_list:\n' +
  `  - model_name: small\n    backends: [{local: ${STORIES}}]\n    price: {input_per_1m: 0.5, output_per_1m: 1.0}\n` +
  `  - model_name: big\n    backends: [{local: ${STORIES}, name: big-a}]\n    price: {input_per_1m: 5.0, output_per_1m: 10.0}\n` +
  '  - model_name: broken\n    backends: [{local: /nonexistent/missing.gguf}]\n' +
  'routes:\n' +
  `  auto:\n    cascade:\n${stage1('{agreement: 0}')}      - {model: big, strategy: cot, cue: false}\n` +
  `  always:\n    cascade:\n${stage1('{agreement: 1, mean_logprob: 0}')}      - {model: big, strategy: cot, cue: false}\n` +
  `  planb:\n    cascade:\n${stage1('{mean_logprob: 0}')}      - {model: broken}\n` +
  '  dead:\n    cascade:\n      - {model: broken, accept_if: {agreement: 0}}\n      - {model: broken}\n';

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ponder-cascade-'));
  cfg = path.join(dir, 'cascade.yaml');
  fs.writeFileSync(cfg, YAML);
  router = await startServer(['--config', cfg, '--chatml', '-c', '256', '--parallel', '2']);
  client = new OpenAI({ baseURL: router.base, apiKey: 'unused', maxRetries: 0 });
});

after(async () => {
  assert.equal(await router.stop(), 0, 'the router exits cleanly on SIGTERM');
  fs.rmSync(dir, { recursive: true, force: true });
});

const REQ = { prompt: 'Once upon a time', max_tokens: 12, seed: 5, ponder: { answer: 'text' } };

function assertAccounting(p, usage) {
  const sum = (k) => p.stages.reduce((a, s) => a + s[k], 0);
  for (const s of p.stages) {
    assert.ok(s.flops > 0, 'each stage reports its FLOPs');
    assert.ok(s.wall_ms > 0);
    assert.ok(s.completion_tokens > 0);
    assert.ok(s.cost_usd > 0, 'priced models cost something');
    assert.ok(Math.abs(s.cost_usd - (s.prompt_tokens * (s.model === 'big' ? 5 : 0.5) + s.completion_tokens * (s.model === 'big' ? 10 : 1)) / 1e6) < 1e-12);
  }
  assert.equal(p.total.flops, sum('flops'));
  assert.equal(p.total.completion_tokens, sum('completion_tokens'));
  assert.ok(Math.abs(p.total.cost_usd - sum('cost_usd')) < 1e-12);
  assert.ok(p.total.wall_ms >= Math.max(...p.stages.map((s) => s.wall_ms)));
  assert.equal(usage.completion_tokens, p.total.completion_tokens, 'usage is the whole spend');
  assert.equal(usage.prompt_tokens, p.total.prompt_tokens);
}

test('a threshold of 0 never escalates: stage 1 answers, with its accounting', async () => {
  const r = await postJSON(router.base + '/completions', { ...REQ, model: 'auto' });
  assert.equal(r.status, 200, r.body);
  const p = r.json.ponder;
  assert.equal(r.json.model, 'auto');
  assert.equal(p.cascade, true);
  assert.equal(p.stage, 1);
  assert.equal(p.model, 'small');
  assert.equal(p.backend, 'small/0');
  assert.equal(p.escalated, false);
  assert.match(p.reason, /^agreement [\d.]+ >= 0\.000$/);
  assert.equal(p.stages.length, 1);
  assert.equal(p.stages[0].outcome, 'accepted');
  assert.equal(p.stages[0].strategy, 'sc:2');
  assert.ok(p.stages[0].agreement === 0.5 || p.stages[0].agreement === 1 || p.stages[0].answer === null);
  assertAccounting(p, r.json.usage);
  // the winning chain's text, as the stage's model alone gives it for the same request
  const direct = await postJSON(router.base + '/completions', { ...REQ, model: 'small', temperature: 0.9, ponder: { answer: 'text', strategy: 'sc:2', cue: false } });
  assert.equal(r.json.choices[0].text, direct.json.choices[0].text);
});

test('a threshold nobody reaches always escalates: stage 2 answers, both stages accounted', async () => {
  const before = await metrics(router.url);
  const r = await client.chat.completions.create({ model: 'always', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 10, seed: 2, ponder: { answer: 'text' } });
  const p = r.ponder;
  assert.equal(p.stage, 2);
  assert.equal(p.model, 'big');
  assert.equal(p.backend, 'big-a');
  assert.equal(p.escalated, true);
  assert.equal(p.reason, 'last stage');
  assert.deepEqual(p.stages.map((s) => s.outcome), ['escalated', 'accepted']);
  assert.match(p.stages[0].reason, /(agreement [\d.]+ < 1\.000|mean_logprob -[\d.]+ < 0\.0000)/);
  assert.equal(p.stages[1].strategy, 'cot');
  assertAccounting(p, r.usage);
  const m = await metrics(router.url);
  const d = (k) => (m[k] ?? 0) - (before[k] ?? 0);
  assert.equal(d('ponder_cascade_requests_total{route="always",stage="2"}'), 1);
  assert.equal(d('ponder_cascade_requests_total{route="always",stage="1"}'), 0);
  assert.equal(d('ponder_cascade_escalations_total{route="always",stage="1"}'), 1);
  assert.equal(d('ponder_cascade_stage_calls_total{route="always",stage="1"}'), 1);
  assert.equal(d('ponder_cascade_stage_flops_total{route="always",stage="2"}'), p.stages[1].flops);
  assert.ok(Math.abs(d('ponder_cascade_stage_cost_usd_total{route="always",stage="1"}') - p.stages[0].cost_usd) < 1e-9);
  assert.equal(d('ponder_cascade_stage_tokens_total{route="always",stage="2",kind="completion"}'), p.stages[1].completion_tokens);
  assert.ok(d('ponder_cascade_stage_seconds_total{route="always",stage="1"}') > 0);
});

test('a streamed cascade request: the accepted answer as one stream, the ponder object last', async () => {
  const whole = await client.chat.completions.create({ model: 'always', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 10, seed: 2, ponder: { answer: 'text' } });
  const s = await client.chat.completions.create({ model: 'always', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 10, seed: 2, ponder: { answer: 'text' }, stream: true, stream_options: { include_usage: true } });
  const chunks = [];
  for await (const ch of s) chunks.push(ch);
  assert.equal(new Set(chunks.map((c) => c.id)).size, 1);
  assert.equal(chunks[0].choices[0].delta.role, 'assistant');
  const text = chunks.filter((c) => c.choices.length).map((c) => c.choices[0].delta.content ?? '').join('');
  assert.equal(text, whole.choices[0].message.content, 'the same answer as without streaming');
  assert.equal(chunks.filter((c) => c.choices[0]?.finish_reason).length, 1);
  const last = chunks[chunks.length - 1];
  assert.deepEqual(last.choices, []);
  assert.deepEqual(last.usage, whole.usage);
  assert.equal(last.ponder.stage, 2);
  assert.equal(last.model, 'always');
  // completions, without include_usage: the ponder object rides on the finish chunk
  const c = await postJSON(router.base + '/completions', { ...REQ, model: 'auto' });
  const sc = await postJSON(router.base + '/completions', { ...REQ, model: 'auto', stream: true });
  assert.equal(sc.status, 200);
  assert.match(sc.headers['content-type'], /^text\/event-stream/);
  const ev = parseSSE(sc.body);
  assert.equal(ev[ev.length - 1], '[DONE]');
  const data = ev.slice(0, -1);
  assert.ok(data.every((e) => e.object === 'text_completion' && e.model === 'auto'));
  assert.equal(data.map((e) => e.choices[0].text).join(''), c.json.choices[0].text);
  const fin = data[data.length - 1];
  assert.equal(fin.choices[0].finish_reason, c.json.choices[0].finish_reason);
  assert.equal(fin.ponder.stage, 1);
});

test('the last stage fails: the rejected stage-1 answer rather than none (Plan B)', async () => {
  const r = await postJSON(router.base + '/completions', { ...REQ, model: 'planb' });
  assert.equal(r.status, 200, r.body);
  const p = r.json.ponder;
  assert.equal(p.stage, 1);
  assert.equal(p.escalated, true);
  assert.deepEqual(p.stages.map((s) => s.outcome), ['escalated', 'failed']);
  assert.match(p.reason, /later stages failed/);
  assert.equal(p.stages[1].http_status, 503);
  assert.match(p.stages[1].error, /failed to load/);
});

test('no stage answers: 503 with the cascade ponder object, counted as failed', async () => {
  const before = await metrics(router.url);
  const r = await postJSON(router.base + '/completions', { ...REQ, model: 'dead' });
  assert.equal(r.status, 503);
  assert.equal(r.json.error.code, 'backends_failed');
  assert.equal(r.json.ponder.stage, null);
  assert.equal(r.json.ponder.reason, 'no stage answered');
  assert.deepEqual(r.json.ponder.stages.map((s) => s.outcome), ['failed', 'failed']);
  const m = await metrics(router.url);
  assert.equal(m['ponder_cascade_failed_total{route="dead"}'] - (before['ponder_cascade_failed_total{route="dead"}'] ?? 0), 1);
  assert.equal(m['ponder_cascade_escalations_total{route="dead",stage="1"}'] - (before['ponder_cascade_escalations_total{route="dead",stage="1"}'] ?? 0), 1);
});

test('a request the models refuse is refused once, not escalated', async () => {
  const r = await postJSON(router.base + '/completions', { ...REQ, model: 'always', n: 2 });
  assert.equal(r.status, 400);
  assert.equal(r.json.error.param, 'n');
  assert.equal(r.json.ponder.stages.length, 1);
  const list = await client.models.list();
  assert.ok(['auto', 'always', 'planb'].every((id) => list.data.some((m) => m.id === id)));
});

test('a strategy prefix on a cascade route is refused (its stages choose their own)', async () => {
  const r = await postJSON(router.base + '/chat/completions', { model: 'sc4-auto', messages: [{ role: 'user', content: 'x' }] });
  assert.equal(r.status, 400);
  assert.equal(r.json.error.param, 'model');
  assert.match(r.json.error.message, /cascade route/);
});

test('ponder calibrate on a few items writes the frontier and per-item CSVs', () => {
  const data = path.join(dir, 'val.jsonl');
  const gen = spawnSync(BIN, ['data', 'arith', '--difficulty', '1', '--count', '3', '--seed', '3'], { encoding: 'utf8' });
  assert.equal(gen.status, 0, gen.stderr);
  fs.writeFileSync(data, gen.stdout);
  const out = path.join(dir, 'results', 'cal', 'auto'); // folders that do not exist yet are made
  const r = spawnSync(BIN, ['calibrate', '--config', cfg, '--route', 'auto', '--task', 'arith', '--data', data, '-n', '8', '-t', '1', '-o', out, '--json'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout.trim().split('\n').pop());
  assert.equal(j.n, 3);
  assert.equal(j.route, 'auto');
  assert.ok(j.stage2_alone.flops_per_item > 0 && j.stage1_alone.flops_per_item > 0);
  assert.deepEqual(Object.keys(j.configured.accept_if), ['agreement'], 'the config\'s own threshold is scored');
  const csv = fs.readFileSync(out + '.csv', 'utf8').trim().split('\n');
  assert.equal(csv[0], 'kind,min_agreement,min_mean_logprob,n,accepted,correct,accuracy,ci95_lo,ci95_hi,flops_per_item,flops_vs_stage2,cost_usd_per_item,escalation_rate,frontier,chosen,frontier_usd');
  assert.equal(csv[1].split(',')[0], 'stage2_alone');
  assert.equal(csv[2].split(',')[0], 'configured');
  const rows = csv.slice(3).map((l) => l.split(','));
  assert.ok(rows.length >= 2);
  assert.equal(rows.filter((c) => c[14] === '1').length, 1, 'one chosen row');
  assert.ok(rows.some((c) => c[13] === '1'), 'a frontier');
  const items = fs.readFileSync(out + '-items.csv', 'utf8').trim().split('\n');
  assert.equal(items.length, 4);
  assert.match(items[0], /^item,gold,s1_answer,s1_agreement,s1_mean_logprob,s1_correct,s1_flops/);
  assert.ok(fs.readFileSync(out + '.svg', 'utf8').startsWith('<?xml'));
  assert.ok(rows.some((c) => c[15] === '1'), 'a dollar frontier (the models have prices)');
  assert.ok(fs.readFileSync(out + '-usd.svg', 'utf8').includes('dollars per item'));
  const bad = spawnSync(BIN, ['calibrate', '--config', cfg, '--route', 'small', '--task', 'arith', '--data', data], { encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /no cascade route/);
});
