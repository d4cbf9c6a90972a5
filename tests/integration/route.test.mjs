// ponder serve --config (the router) end to end: two `ponder serve` replicas of the same
// model, fault-injecting servers in front of one of them, and a router over both. Every
// failure — refused, hung before the first token, 500, 429 with Retry-After, a stream cut
// after a few chunks, a local model that does not load — must end in a complete answer
// from the next backend; cut streams must continue into one stream whose text is exactly
// what the healthy replica alone produces greedily. The circuit breaker opens after its
// failures, skips, probes when half-open and closes again.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { startServer, postJSON, metrics, parseSSE, sleep, STORIES, BIN, usageCounts } from './helpers.mjs';
import { startFault, blackholePort } from './faults.mjs';

const UP = 'stories260K';
const msgs = (content) => [{ role: 'user', content }];
let A, B, router, client, direct, dir, hole;
const F = {};

function yaml(refused, holePort) {
  const remote = (base, extra = '') => `      - {api_base: "${base}", model: ${UP}${extra}}\n`;
  const model = (name, ...backends) => `  - model_name: ${name}\n    backends:\n${backends.join('')}`;
  return 'model_list:\n' +
    model('refused', remote(`http://127.0.0.1:${refused}/v1`, ', connect_timeout: 1'), remote(B.base)) +
    '    price: {input_per_1m: 1.0, output_per_1m: 2.0}\n' +
    model('slowconnect', remote(`http://127.0.0.1:${holePort}/v1`, ', connect_timeout: 0.3'), remote(B.base)) +
    model('hang', remote(F.hang.base, ', first_token_timeout: 0.5, timeout: 1'), remote(B.base)) +
    model('e500', remote(F.e500.base, ', api_key_env: PONDER_TEST_BACKEND_KEY'), remote(B.base)) +
    model('e429', remote(F.e429.base), remote(B.base)) +
    model('drop', remote(F.drop.base), remote(B.base)) +
    model('dropmany', remote(F.dropmany.base), remote(B.base)) +
    model('stall', remote(F.stall.base, ', first_token_timeout: 0.5, timeout: 0.5'), remote(B.base)) +
    model('keepalive', remote(F.keepalive.base, ', first_token_timeout: 0.5, timeout: 0.5'), remote(B.base)) +
    model('droplocal', remote(F.droplocal.base), `      - local: ${STORIES}\n`) +
    model('broken', '      - local: /nonexistent/missing.gguf\n', remote(B.base)) +
    model('breaker', remote(F.breaker.base), remote(B.base)) +
    model('dead', remote(`http://127.0.0.1:${refused}/v1`)) +
    'router_settings:\n  num_retries: 1\n  retry_backoff_ms: 20\n  retry_after_max_s: 0.2\n' +
    '  circuit_breaker: {failures: 2, cooldown_s: 1}\n' +
    'routes:\n  rescue: [dead, refused]\n';
}

before(async () => {
  const args = ['-m', STORIES, '--chatml', '--parallel', '4', '-c', '512'];
  [A, B] = await Promise.all([startServer(args), startServer(args)]);
  for (const k of ['hang', 'e500', 'e429', 'drop', 'dropmany', 'stall', 'keepalive', 'droplocal', 'breaker']) F[k] = await startFault(A.url);
  F.keepalive.state.mode = 'keepalive';
  F.dropmany.state.mode = 'drop';
  F.stall.state.mode = 'stall';
  F.hang.state.mode = 'hang';
  F.e500.state.mode = '500';
  F.e429.state.mode = '429';
  F.drop.state.mode = F.droplocal.state.mode = 'drop';
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ponder-route-'));
  const cfg = path.join(dir, 'router.yaml');
  hole = await blackholePort();
  fs.writeFileSync(cfg, yaml(hole.refused, hole.port));
  process.env.PONDER_TEST_BACKEND_KEY = 'k-123'; // the router inherits it
  router = await startServer(['--config', cfg, '--chatml', '-c', '512', '--parallel', '2']);
  client = new OpenAI({ baseURL: router.base, apiKey: 'unused', maxRetries: 0 });
  direct = new OpenAI({ baseURL: B.base, apiKey: 'unused', maxRetries: 0 });
});

after(async () => {
  const code = await router.stop();
  if (code !== 0) console.error(router.stderr());
  assert.equal(code, 0, 'the router exits cleanly on SIGTERM');
  for (const f of Object.values(F)) await f.close();
  hole.stop();
  await Promise.all([A.stop(), B.stop()]);
  fs.rmSync(dir, { recursive: true, force: true });
});

// A router of its own over one remote backend at base (model "m"), extra YAML after its
// model_list; fn(router) runs against it, then it is stopped (exit status 0).
async function withRouter(name, base, extra, fn, args = []) {
  const cfg = path.join(dir, `${name}.yaml`);
  fs.writeFileSync(cfg, `model_list:\n  - model_name: m\n    backends:\n      - {api_base: "${base}", model: ${UP}}\n` + extra);
  const rr = await startServer(['--config', cfg, ...args]);
  try {
    await fn(rr);
  } finally {
    assert.equal(await rr.stop(), 0);
  }
}

const REQ = { messages: msgs('Tell me a story.'), max_tokens: 24, temperature: 0 };
const reference = () => direct.chat.completions.create({ ...REQ, model: UP });

async function streamed(model, extra = {}) {
  const s = await client.chat.completions.create({ ...REQ, ...extra, model, stream: true, stream_options: { include_usage: true } });
  const chunks = [];
  for await (const ch of s) chunks.push(ch);
  const text = chunks.filter((c) => c.choices.length).map((c) => c.choices[0].delta.content ?? '').join('');
  return { chunks, text, last: chunks[chunks.length - 1] };
}

// One stream: one id, one role chunk first, one finish, usage and the ponder object last.
function assertOneStream(r, model, ref) {
  assert.equal(new Set(r.chunks.map((c) => c.id)).size, 1, 'one id for the whole stream');
  assert.ok(r.chunks.every((c) => c.model === model));
  const roles = r.chunks.filter((c) => c.choices[0]?.delta?.role);
  assert.equal(roles.length, 1, 'one role chunk');
  assert.equal(r.chunks[0].choices[0].delta.role, 'assistant');
  const fins = r.chunks.filter((c) => c.choices[0]?.finish_reason);
  assert.equal(fins.length, 1, 'one finish');
  assert.equal(fins[0].choices[0].finish_reason, ref.choices[0].finish_reason);
  assert.equal(r.text, ref.choices[0].message.content, 'the text the healthy backend alone writes');
  assert.deepEqual(r.last.choices, []);
  assert.deepEqual(usageCounts(r.last.usage), usageCounts(ref.usage));
  for (const c of r.chunks.slice(0, -1)) assert.equal(c.usage, null, 'usage null until the last chunk, as OpenAI sends it');
}

test('a healthy chain: the first backend answers, re-stamped, with the ponder object', async () => {
  const ref = await reference();
  F.drop.state.mode = 'ok';
  const r = await client.chat.completions.create({ ...REQ, model: 'drop' });
  F.drop.state.mode = 'drop';
  assert.equal(r.model, 'drop');
  assert.match(r.id, /^chatcmpl-/);
  assert.equal(r.choices[0].message.content, ref.choices[0].message.content);
  assert.deepEqual(usageCounts(r.usage), usageCounts(ref.usage));
  assert.equal(r.ponder.backend, 'drop/0');
  assert.deepEqual(r.ponder.attempts.map((a) => a.outcome), ['ok']);
  assert.equal(typeof r.ponder.upstream.flops, 'number');
  const list = await client.models.list();
  assert.deepEqual(list.data.map((m) => m.id).sort(), ['breaker', 'broken', 'dead', 'drop', 'droplocal', 'dropmany', 'e429', 'e500', 'hang', 'keepalive', 'refused', 'rescue', 'slowconnect', 'stall']);
});

test('strategy prefixes as ponder serve takes them (sc2-MODEL), and the chat page, on the router', async () => {
  F.drop.state.mode = 'ok';
  try {
    const r = await postJSON(router.base + '/chat/completions', { model: 'sc2-drop', messages: msgs('Hi'), max_tokens: 6, seed: 3 });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json.ponder.backend, 'drop/0');
    assert.equal(r.json.ponder.upstream.strategy, 'sc:2');
    assert.equal(r.json.ponder.upstream.samples, 2);
    // a strategy in the body wins over the prefix
    const b = await postJSON(router.base + '/chat/completions', { model: 'sc2-drop', messages: msgs('Hi'), max_tokens: 6, ponder: { strategy: 'cot' } });
    assert.equal(b.status, 200, b.body);
    assert.equal(b.json.ponder.upstream.strategy, 'cot');
  } finally {
    F.drop.state.mode = 'drop';
  }
  const none = await postJSON(router.base + '/chat/completions', { model: 'sc2-nosuch', messages: msgs('Hi') });
  assert.equal(none.status, 404);
  assert.equal(none.json.error.param, 'model');
  const page = await fetch(router.url + '/');
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type'), /^text\/html/);
  assert.match(await page.text(), /<title>ponder<\/title>/);
});

test('connection refused → the next backend, streamed or not', async () => {
  const ref = await reference();
  const m0 = await metrics(router.url);
  const r = await client.chat.completions.create({ ...REQ, model: 'refused' });
  assert.equal(r.choices[0].message.content, ref.choices[0].message.content);
  assert.deepEqual(r.ponder.attempts.map((a) => a.outcome), ['connect', 'ok']);
  const m1 = await metrics(router.url);
  assert.equal(m1['ponder_time_to_first_token_seconds_count'] - m0['ponder_time_to_first_token_seconds_count'], 1,
    'a whole answer\'s time to first token is observed, as ponder serve observes it');
  assert.equal(r.ponder.backend, 'refused/1');
  const s = await streamed('refused');
  assertOneStream(s, 'refused', ref);
  assert.deepEqual(s.last.ponder.attempts.map((a) => a.outcome), ['connect', 'ok']);
});

test('a connect that does not complete times out (connect_timeout) → the next backend', async () => {
  const ref = await reference();
  const t0 = Date.now();
  const r = await client.chat.completions.create({ ...REQ, model: 'slowconnect' });
  assert.equal(r.choices[0].message.content, ref.choices[0].message.content);
  assert.deepEqual(r.ponder.attempts.map((a) => a.outcome), ['timeout_connect', 'ok']);
  assert.ok(r.ponder.attempts[0].ms >= 250 && r.ponder.attempts[0].ms < 2000, `${r.ponder.attempts[0].ms} ms`);
  assert.ok(Date.now() - t0 < 3000);
});

test('a backend that hangs before the first token times out → the next backend', async () => {
  const ref = await reference();
  const t0 = Date.now();
  const s = await streamed('hang');
  assertOneStream(s, 'hang', ref);
  assert.deepEqual(s.last.ponder.attempts.map((a) => a.outcome), ['timeout_first_token', 'ok']);
  assert.ok(Date.now() - t0 < 5000);
  const r = await client.chat.completions.create({ ...REQ, model: 'hang' });
  assert.equal(r.choices[0].message.content, ref.choices[0].message.content);
  assert.equal(r.ponder.attempts[0].outcome, 'timeout_first_token');
  assert.equal(F.hang.state.count, 2);
});

test('500 → the next backend, streamed or not; the failure is in the ponder object', async () => {
  const ref = await reference();
  const r = await client.chat.completions.create({ ...REQ, model: 'e500' });
  assert.equal(r.choices[0].message.content, ref.choices[0].message.content);
  assert.equal(r.ponder.attempts[0].outcome, 'http_5xx');
  assert.equal(r.ponder.attempts[0].http_status, 500);
  assert.match(r.ponder.attempts[0].message, /injected 500/);
  assert.equal(F.e500.state.auth, 'Bearer k-123', 'the key from api_key_env');
  const s = await streamed('e500');
  assertOneStream(s, 'e500', ref);
});

test('429 with Retry-After: the next backend now, the limited one skipped until then', async () => {
  const ref = await reference();
  const r1 = await client.chat.completions.create({ ...REQ, model: 'e429' });
  assert.equal(r1.choices[0].message.content, ref.choices[0].message.content);
  assert.deepEqual(r1.ponder.attempts.map((a) => a.outcome), ['http_429', 'ok']);
  assert.equal(F.e429.state.count, 1);
  const r2 = await client.chat.completions.create({ ...REQ, model: 'e429' });
  assert.equal(r2.ponder.attempts[0].outcome, 'http_429');
  assert.match(r2.ponder.attempts[0].message, /Retry-After/);
  assert.equal(F.e429.state.count, 1, 'not asked again before its Retry-After');
  await sleep(1100);
  F.e429.state.mode = 'ok';
  const r3 = await client.chat.completions.create({ ...REQ, model: 'e429' });
  assert.equal(r3.ponder.backend, 'e429/0');
  assert.equal(F.e429.state.count, 2);
});

// One healthy answer through drop/0 resets its consecutive failures, so the circuit
// breaker (2 failures) does not open between the cut-stream cases.
async function healDrop() {
  F.drop.state.mode = 'ok';
  const r = await client.chat.completions.create({ ...REQ, max_tokens: 2, model: 'drop' });
  assert.equal(r.ponder.backend, 'drop/0');
  F.drop.state.mode = 'drop';
}

test('every backend rate limited: 429 with Retry-After (as ponder serve answers a full queue), not 503', async () => {
  const f = await startFault(B.url, '429');
  f.state.retryAfter = 2;
  try {
    await withRouter('limited', f.base, 'router_settings: {num_retries: 1, retry_backoff_ms: 10, retry_after_max_s: 0.5}\n', async (rr) => {
      for (const stream of [false, true]) {
        const r = await postJSON(rr.base + '/chat/completions', { ...REQ, model: 'm', stream });
        assert.equal(r.status, 429, r.body);
        // the backend's own error object when it answered 429, the router's when it was skipped
        if (stream) assert.equal(r.json.error.code, 'backends_rate_limited');
        else assert.match(r.json.error.message, /injected 429/);
        assert.equal(r.json.error.type, 'requests');
        assert.ok(Number(r.headers['retry-after']) >= 1, `Retry-After ${r.headers['retry-after']}`);
        assert.ok(r.json.ponder.attempts.every((a) => a.outcome === 'http_429'));
      }
      assert.equal(f.state.count, 1, 'the limited backend was not asked again before its Retry-After');
      f.state.mode = '500';
      await sleep(2100);
      const mixed = await postJSON(rr.base + '/chat/completions', { ...REQ, model: 'm' });
      assert.equal(mixed.status, 503, 'other failures: 503 as before');
      assert.equal(mixed.json.error.code, 'backends_failed');
    });
  } finally {
    await f.close();
  }
});

test('a Retry-After within retry_after_max_s is waited for, then the same backend answers', async () => {
  const f = await startFault(B.url, '429once');
  try {
    await withRouter('wait', f.base, 'router_settings: {num_retries: 1, retry_backoff_ms: 10, retry_after_max_s: 2}\n', async (rr) => {
      const t0 = Date.now();
      const r = await postJSON(rr.base + '/chat/completions', { ...REQ, model: 'm' });
      const ms = Date.now() - t0;
      assert.equal(r.status, 200);
      assert.deepEqual(r.json.ponder.attempts.map((a) => a.outcome), ['http_429', 'ok']);
      assert.ok(ms >= 1000, `waited ${ms} ms for Retry-After: 1`);
      assert.equal(f.state.count, 2);
    });
  } finally {
    await f.close();
  }
});

test('a stream cut after a few chunks continues on the next replica: one stream, nothing lost or doubled', async () => {
  const ref = await reference();
  for (const n of [2, 5, 9]) { // role + 1, 4, 8 tokens before the cut
    F.drop.state.n = n;
    const s = await streamed('drop');
    assertOneStream(s, 'drop', ref);
    const p = s.last.ponder;
    assert.deepEqual(p.attempts.map((a) => a.outcome), ['broken_stream', 'ok'], `cut after ${n}`);
    assert.equal(p.attempts[0].events, n);
    assert.equal(p.continued, 1);
    assert.equal(p.backend, 'drop/1');
    await healDrop();
  }
  const m = await metrics(router.url);
  assert.ok(m['ponder_router_continuations_total'] >= 3);
  // ponder serve's own series too: statuses, latency and TTFT histograms, tokens
  assert.ok(m['ponder_requests_total{code="200"}'] >= 6);
  assert.ok(m['ponder_request_duration_seconds_count'] >= 6);
  assert.ok(m['ponder_time_to_first_token_seconds_count'] >= 3);
  assert.ok(m['ponder_completion_tokens_total'] >= 3 * ref.usage.completion_tokens);
  assert.equal(m['ponder_active_requests'], 0);
  assert.ok(m['ponder_backend_failures_total{backend="drop/0",reason="broken_stream"}'] >= 3);
});

test('concurrent cut streams: each is one stream with the healthy text (continued, or restarted once the circuit opened)', async () => {
  const ref = await reference();
  F.dropmany.state.n = 4;
  const all = await Promise.all([0, 1, 2, 3, 4, 5].map(() => streamed('dropmany')));
  for (const s of all) {
    assertOneStream(s, 'dropmany', ref);
    assert.ok(['broken_stream', 'circuit_open'].includes(s.last.ponder.attempts[0].outcome));
    assert.equal(s.last.ponder.backend, 'dropmany/1');
  }
  assert.equal(new Set(all.map((s) => s.chunks[0].id)).size, all.length, 'distinct ids across requests');
});

test('n = 2 cannot be continued: a cut after the first token ends in an error event and [DONE], nothing doubled', async () => {
  F.drop.state.n = 4; // two role chunks, then tokens
  await healDrop();
  const m0 = await metrics(router.url);
  const r = await postJSON(router.base + '/chat/completions', { ...REQ, model: 'drop', n: 2, stream: true });
  assert.equal(r.status, 200);
  await sleep(100);
  const m1 = await metrics(router.url);
  const code = (m, c) => m[`ponder_requests_total{code="${c}"}`] ?? 0;
  assert.equal(code(m1, 503) - code(m0, 503), 1, 'a stream that ends in backends_failed counts as a failure in /metrics');
  assert.equal(code(m1, 200) - code(m0, 200), 1, 'the only 200 is the /metrics request between');
  const ev = parseSSE(r.body);
  assert.equal(ev[ev.length - 1], '[DONE]');
  const err = ev[ev.length - 2];
  assert.equal(err.error.code, 'backends_failed');
  assert.deepEqual(err.ponder.attempts.map((a) => a.outcome), ['broken_stream']);
  const chunks = ev.slice(0, -2);
  assert.equal(chunks.length, 4, 'exactly what the backend sent before the cut');
  assert.equal(chunks.filter((c) => c.choices[0].delta.role).length, 2);
  await healDrop();
});

test('non-streaming requests are streamed upstream: a cut answer continues, an n = 2 one restarts, logprobs pass through whole', async () => {
  const ref = await reference();
  F.drop.state.n = 6;
  await healDrop();
  const r = await client.chat.completions.create({ ...REQ, model: 'drop' });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices[0].message.content, ref.choices[0].message.content);
  assert.equal(r.choices[0].finish_reason, ref.choices[0].finish_reason);
  assert.deepEqual(usageCounts(r.usage), usageCounts(ref.usage));
  assert.deepEqual(r.ponder.attempts.map((a) => a.outcome), ['broken_stream', 'ok']);
  assert.equal(r.ponder.continued, 1);
  await healDrop();
  const ref2 = await direct.chat.completions.create({ ...REQ, model: UP, n: 2 });
  const r2 = await client.chat.completions.create({ ...REQ, model: 'drop', n: 2 });
  assert.deepEqual(r2.choices.map((c) => c.message.content), ref2.choices.map((c) => c.message.content));
  assert.deepEqual(r2.ponder.attempts.map((a) => a.outcome), ['broken_stream', 'ok']);
  assert.equal(r2.ponder.continued, 0, 'restarted, not continued');
  assert.deepEqual(usageCounts(r2.usage), usageCounts(ref2.usage));
  await healDrop();
  F.drop.state.mode = 'ok';
  const lp = await client.chat.completions.create({ ...REQ, model: 'drop', logprobs: true, top_logprobs: 2 });
  F.drop.state.mode = 'drop';
  assert.equal(lp.choices[0].logprobs.content.length, lp.usage.completion_tokens);
  assert.equal(lp.model, 'drop');
});

test('a stream stuck mid-answer (silent past timeout) continues; stuck after its role chunk, it restarts without a second role', async () => {
  const ref = await reference();
  F.stall.state.n = 4;
  let s = await streamed('stall');
  assertOneStream(s, 'stall', ref);
  assert.deepEqual(s.last.ponder.attempts.map((a) => a.outcome), ['timeout_idle', 'ok']);
  assert.equal(s.last.ponder.continued, 1);
  F.stall.state.n = 1; // only the role chunk
  s = await streamed('stall');
  assertOneStream(s, 'stall', ref);
  assert.deepEqual(s.last.ponder.attempts.map((a) => a.outcome), ['timeout_first_token', 'ok']);
  assert.equal(s.last.ponder.continued, 0);
});

test('keep-alive comments are not progress: a backend stuck mid-answer that sends only ": keep-alive" times out and the stream continues', async () => {
  const ref = await reference();
  F.keepalive.state.n = 4;
  const t0 = Date.now();
  const s = await Promise.race([streamed('keepalive'),
    sleep(8000).then(() => { throw new Error('the stream is held by keep-alive comments'); })]);
  assertOneStream(s, 'keepalive', ref);
  assert.deepEqual(s.last.ponder.attempts.map((a) => a.outcome), ['timeout_idle', 'ok']);
  assert.equal(s.last.ponder.continued, 1);
  assert.ok(Date.now() - t0 < 5000);
});

test('continue_final_message on ponder serve itself: the answer goes on from the given text', async () => {
  const ref = await reference();
  const full = ref.choices[0].message.content;
  const cut = full.slice(0, 7);
  const r = await postJSON(B.base + '/chat/completions', {
    ...REQ, max_tokens: ref.usage.completion_tokens, messages: [...REQ.messages, { role: 'assistant', content: cut }],
    continue_final_message: true, add_generation_prompt: false,
  });
  assert.equal(r.status, 200);
  assert.ok((cut + r.json.choices[0].message.content).startsWith(full));
  const bad = await postJSON(B.base + '/chat/completions', { ...REQ, continue_final_message: true });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error.param, 'continue_final_message');
});

test('a cut stream continues on a local model (continue_final_message on the in-process engine)', async () => {
  const ref = await reference();
  F.droplocal.state.n = 6;
  const s = await streamed('droplocal');
  assertOneStream(s, 'droplocal', ref);
  assert.deepEqual(s.last.ponder.attempts.map((a) => a.outcome), ['broken_stream', 'ok']);
  assert.equal(s.last.ponder.backend, 'droplocal/1');
});

test('a cut completions stream continues from prompt + text so far', async () => {
  const req = { prompt: 'Once upon a time', max_tokens: 20, temperature: 0 };
  const ref = await direct.completions.create({ ...req, model: UP });
  F.drop.state.n = 4;
  await healDrop();
  const s = await client.completions.create({ ...req, model: 'drop', stream: true });
  let text = '', fins = 0, last = null;
  const ids = new Set();
  for await (const ch of s) { ids.add(ch.id); text += ch.choices[0]?.text ?? ''; if (ch.choices[0]?.finish_reason) fins++; last = ch; }
  assert.equal(text, ref.choices[0].text);
  assert.equal(fins, 1);
  assert.equal(ids.size, 1);
  assert.equal(last.ponder.continued, 1);
});

test('the router\'s /metrics shows its local backends\' engine load (queue depth, sequences being decoded)', async () => {
  const seen = { slots: 0, queue: 0 };
  let going = true;
  const poll = (async () => {
    while (going) {
      const m = await metrics(router.url);
      seen.slots = Math.max(seen.slots, m['ponder_active_slots']);
      seen.queue = Math.max(seen.queue, m['ponder_queue_depth']);
      await sleep(2);
    }
  })();
  // droplocal/1 is local with --parallel 2: six requests of two choices keep it busy and queued
  const F0 = F.droplocal.state.mode;
  F.droplocal.state.mode = '500';
  try {
    await Promise.all([0, 1, 2, 3, 4, 5].map((i) => postJSON(router.base + '/completions',
      { model: 'droplocal', prompt: 'Once upon a time', max_tokens: 200, n: 2, seed: i })));
  } finally {
    going = false;
    await poll;
    F.droplocal.state.mode = F0;
  }
  assert.ok(seen.slots > 0, 'sequences being decoded were seen');
  assert.ok(seen.slots <= 2, `at most --parallel 2: ${seen.slots}`);
  assert.ok(seen.queue > 0, 'requests waiting for a slot were seen');
  const idle = await metrics(router.url);
  assert.equal(idle['ponder_active_slots'], 0);
  assert.equal(idle['ponder_queue_depth'], 0);
});

test('a local model that fails to load is a failed backend: the chain falls back', async () => {
  const ref = await reference();
  const r = await client.chat.completions.create({ ...REQ, model: 'broken' });
  assert.equal(r.choices[0].message.content, ref.choices[0].message.content);
  assert.equal(r.ponder.attempts[0].outcome, 'load');
  assert.match(r.ponder.attempts[0].message, /missing\.gguf/);
  const m = await metrics(router.url);
  assert.equal(m['ponder_backend_up{backend="broken/0"}'], 0);
  assert.match(router.stderr(), /broken\/0: the model failed to load/);
});

test('the circuit breaker opens after 2 failures, skips, probes when half-open, closes on success', async () => {
  const state = async () => {
    const m = await metrics(router.url);
    return Object.keys(m).find((k) => k.startsWith('ponder_backend_circuit_state{backend="breaker/0"')).match(/state="(\w+)"/)[1];
  };
  const outcomes = async () => (await client.chat.completions.create({ ...REQ, model: 'breaker' })).ponder.attempts.map((a) => a.outcome);
  F.breaker.state.mode = '500';
  assert.deepEqual(await outcomes(), ['http_5xx', 'ok']);
  assert.equal(await state(), 'closed');
  assert.deepEqual(await outcomes(), ['http_5xx', 'ok']);
  assert.equal(await state(), 'open');
  assert.deepEqual(await outcomes(), ['circuit_open', 'ok']);
  assert.equal(F.breaker.state.count, 2, 'an open circuit sends nothing');
  await sleep(1100);
  assert.equal(await state(), 'half_open');
  assert.deepEqual(await outcomes(), ['http_5xx', 'ok'], 'one probe');
  assert.equal(await state(), 'open', 'a failed probe reopens');
  assert.deepEqual(await outcomes(), ['circuit_open', 'ok']);
  await sleep(1100);
  F.breaker.state.mode = 'ok';
  assert.deepEqual(await outcomes(), ['ok']);
  assert.equal(await state(), 'closed');
  assert.equal(F.breaker.state.count, 4);
  const m = await metrics(router.url);
  assert.equal(m['ponder_backend_circuit_opens_total{backend="breaker/0"}'], 2);
});

test('every circuit of a chain open: the one whose cool-down ends first is probed (once a second) instead of 503 for the whole cool-down', async () => {
  const f = await startFault(B.url, '500');
  try {
    await withRouter('allopen', f.base, 'router_settings: {num_retries: 0, circuit_breaker: {failures: 1, cooldown_s: 30}}\n', async (rr) => {
      let r = await postJSON(rr.base + '/chat/completions', { ...REQ, model: 'm' });
      assert.equal(r.status, 503);
      assert.deepEqual(r.json.ponder.attempts.map((a) => a.outcome), ['http_5xx']);
      f.state.mode = 'ok'; // the only replica is back
      r = await postJSON(rr.base + '/chat/completions', { ...REQ, model: 'm' });
      assert.equal(r.status, 503, 'within a second of opening: not asked again');
      assert.deepEqual(r.json.ponder.attempts.map((a) => a.outcome), ['circuit_open']);
      assert.equal(f.state.count, 1);
      await sleep(1100);
      const t0 = Date.now();
      r = await postJSON(rr.base + '/chat/completions', { ...REQ, model: 'm' });
      assert.equal(r.status, 200, r.body);
      assert.deepEqual(r.json.ponder.attempts.map((a) => a.outcome), ['circuit_open', 'ok']);
      assert.ok(Date.now() - t0 < 5000);
      r = await postJSON(rr.base + '/chat/completions', { ...REQ, model: 'm', stream: true });
      assert.equal(r.status, 200);
      assert.deepEqual(parseSSE(r.body).at(-2).ponder.attempts.map((a) => a.outcome), ['ok'], 'the circuit closed');
      const m = await metrics(rr.url);
      assert.equal(m['ponder_backend_circuit_state{backend="m/0",state="closed"}'], 0);
    });
  } finally {
    await f.close();
  }
});

test('every backend failing is a 503 naming each failure; a route falls back across models', async () => {
  const raw = await postJSON(router.base + '/chat/completions', { ...REQ, model: 'dead' });
  assert.equal(raw.status, 503);
  // num_retries: 1 → a second pass after a jittered back-off
  assert.deepEqual(raw.json.ponder.attempts.map((a) => a.outcome), ['connect', 'connect']);
  assert.equal(raw.json.ponder.backend, null);
  await assert.rejects(client.chat.completions.create({ ...REQ, model: 'dead' }), (e) => {
    assert.equal(e.status, 503);
    assert.equal(e.code, 'backends_failed');
    assert.match(e.message, /dead\/0: (connect|circuit_open)/);
    return true;
  });
  await assert.rejects(client.chat.completions.create({ ...REQ, model: 'dead', stream: true }), (e) => e.status === 503);
  const r = await client.chat.completions.create({ ...REQ, model: 'rescue' });
  assert.equal(r.model, 'rescue');
  // dead/0 failed twice above (two passes each): its circuit may be open by now
  const seen = r.ponder.attempts.map((a) => `${a.backend}:${a.outcome}`);
  assert.match(seen[0], /^dead\/0:(connect|circuit_open)$/);
  assert.deepEqual(seen.slice(1), ['refused/0:connect', 'refused/1:ok']);
  // refused's price: $1 per 1M prompt tokens, $2 per 1M completion tokens
  assert.ok(Math.abs(r.ponder.cost_usd - (r.usage.prompt_tokens * 1 + r.usage.completion_tokens * 2) / 1e6) < 1e-12);
  // a request every backend would refuse is the backend's 400, not a fallback
  const bad = await postJSON(router.base + '/chat/completions', { ...REQ, model: 'refused', temperature: 5 });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error.param, 'temperature');
  const unknown = await postJSON(router.base + '/chat/completions', { ...REQ, model: 'nope' });
  assert.equal(unknown.status, 404);
  assert.equal(unknown.json.error.code, 'model_not_found');
});

test('a bad config is refused before the server starts, naming the key and line', () => {
  const bad = path.join(dir, 'bad.yaml');
  fs.writeFileSync(bad, 'model_list:\n  - model_name: m\n    backends:\n      - api_base: http://x/v1\n        api_key: sk-secret\n');
  let r = spawnSync(BIN, ['serve', '--config', bad, '--port', '0'], { encoding: 'utf8', timeout: 10000 });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /bad\.yaml:5: model_list\[0\]\.backends\[0\]\.api_key: API keys must not be written/);
  assert.ok(!r.stderr.includes('listening'));
  fs.writeFileSync(bad, 'model_list:\n  - model_name: m\n    backends:\n      - {api_base: "http://x/v1", api_key_env: PONDER_TEST_UNSET_KEY}\n');
  r = spawnSync(BIN, ['serve', '--config', bad, '--port', '0'], { encoding: 'utf8', timeout: 10000, env: { ...process.env, PONDER_TEST_UNSET_KEY: '' } });
  assert.equal(r.status, 2, 'a config error, as a bad key is');
  assert.match(r.stderr, /bad\.yaml:4: .*PONDER_TEST_UNSET_KEY/);
  r = spawnSync(BIN, ['serve', '--config', bad, '-m', STORIES], { encoding: 'utf8', timeout: 10000 });
  assert.equal(r.status, 2);
  fs.writeFileSync(bad, 'model_list:\n  - model_name: m\n    backends:\n      - {api_base: "http://127.0.0.1:port/v1"}\n');
  r = spawnSync(BIN, ['serve', '--config', bad, '--port', '0'], { encoding: 'utf8', timeout: 10000 });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /bad\.yaml:4: backend 'm\/0': api_base 'http:\/\/127\.0\.0\.1:port\/v1' is not a valid URL/);
});

test('the router refuses what ponder serve refuses: "stream" not a boolean, stream_options without stream', async () => {
  for (const [extra, param] of [[{ stream: 'true' }, 'stream'], [{ stream_options: { include_usage: true } }, 'stream_options'],
    [{ stream: false, stream_options: { include_usage: true } }, 'stream_options'], [{ stream: true, stream_options: 1 }, 'stream_options'],
    [{ stream: true, stream_options: { include_usage: 'yes' } }, 'stream_options.include_usage']]) {
    const body = { ...REQ, model: 'drop', ...extra };
    const r = await postJSON(router.base + '/chat/completions', body);
    const d = await postJSON(B.base + '/chat/completions', { ...body, model: UP });
    assert.equal(r.status, 400, JSON.stringify(extra));
    assert.equal(r.json.error.param, param);
    assert.deepEqual(r.json.error, d.json.error, 'the same error as ponder serve');
  }
  const c = await postJSON(router.base + '/completions', { prompt: 'Hi', model: 'drop', stream: 1 });
  assert.equal(c.status, 400);
  assert.equal(c.json.error.param, 'stream');
});

test('a non-streaming client that leaves cancels its chain walk (as ponder serve cancels its request)', async () => {
  const f = await startFault(B.url, 'slow');
  f.state.delayMs = 3000;
  try {
    await withRouter('leave', f.base, '', async (rr) => {
      const req = http.request(rr.base + '/chat/completions', { method: 'POST', agent: false, headers: { 'Content-Type': 'application/json' } });
      req.on('error', () => {});
      req.end(JSON.stringify({ ...REQ, model: 'm' }));
      await sleep(300);
      req.destroy();
      await sleep(400);
      const m = await metrics(rr.url);
      assert.equal(m['ponder_router_requests_total{outcome="cancelled"}'], 1, 'cancelled long before the backend answers');
      assert.equal(m['ponder_router_requests_total{outcome="ok"}'], 0);
      assert.match(rr.stderr(), /client left before its answer/);
    });
  } finally {
    await f.close();
  }
});

test('a long api_base is used whole (no URL cut at 2 kB)', async () => {
  // "/." segments are removed by the URL's normalisation: the same server, 3 kB of path
  const base = B.url + '/.'.repeat(1500) + '/v1';
  await withRouter('longurl', base, '', async (rr) => {
    const r = await postJSON(rr.base + '/chat/completions', { ...REQ, model: 'm' });
    assert.equal(r.status, 200, r.body.slice(0, 300));
    assert.deepEqual(r.json.ponder.attempts.map((a) => a.outcome), ['ok']);
  });
});

test('--api-key guards the router as it guards ponder serve', async () => {
  await withRouter('keyed', B.base, '', async (keyed) => {
    assert.equal((await postJSON(keyed.base + '/chat/completions', { ...REQ, model: 'm' })).status, 401);
    const ok = await postJSON(keyed.base + '/chat/completions', { ...REQ, model: 'm' }, { Authorization: 'Bearer sekrit' });
    assert.equal(ok.status, 200);
    assert.equal(ok.json.model, 'm');
    const h = await postJSON(keyed.url + '/health', undefined);
    assert.equal(h.status, 405); // POST; GET /health needs no key:
    const g = await fetch(keyed.url + '/health');
    assert.equal(g.status, 200);
  }, ['--api-key', 'sekrit']);
});
