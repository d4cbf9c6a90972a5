// Admission before work (issue 18): the slot/queue check and the cheap limits (body size,
// JSON values, message count, text length against the context) come before a body is
// parsed, rendered or tokenized, so abusive bodies cost little memory; logprob buffers
// grow with the request's own tokens (they were sized choices x all tokens). Peak RSS is
// read from /proc/PID/status (VmHWM) of a real `ponder serve`.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer, STORIES, postJSON, request, sleep } from '../integration/helpers.mjs';

// ASan keeps freed memory in its quarantine (resident by design): RSS bounds are checked in
// the plain build only
const SANITIZED = process.env.PONDER_SANITIZED === '1';
const peakMB = (pid) => Number(fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmHWM:\s+(\d+)/)[1]) / 1024;

// 100,000 tiny messages: ~3.4 MB of JSON (the body)
const tinyMessages = () => JSON.stringify({ messages: Array.from({ length: 100000 }, () => ({ role: 'user', content: 'hi' })), max_tokens: 1 });

describe('admission', () => {
  let srv;
  before(async () => { srv = await startServer(['-m', STORIES, '--chatml', '-c', '1024', '--parallel', '4', '--max-messages', '16']); });
  after(async () => { assert.equal(await srv.stop(), 0); });

  test('32 bodies of 100,000 tiny messages at once: refused, RSS grows < 64 MB', async () => {
    await postJSON(srv.base + '/completions', { prompt: 'Once', max_tokens: 4 }); // warm
    const before = peakMB(srv.proc.pid);
    const body = tinyMessages();
    const t0 = Date.now();
    const rs = await Promise.all(Array.from({ length: 32 }, () => request(srv.base + '/chat/completions',
      { method: 'POST', headers: { 'Content-Type': 'application/json' }, body })));
    const ms = Date.now() - t0;
    for (const r of rs) {
      assert.ok(r.status === 400 || r.status === 429, `${r.status} ${r.body.slice(0, 200)}`);
      const e = JSON.parse(r.body).error;
      if (r.status === 400) assert.equal(e.code, 'request_too_complex');
    }
    const grew = peakMB(srv.proc.pid) - before;
    console.log(`# 32 x ${(body.length / 1e6).toFixed(1)} MB of tiny messages: refused in ${ms} ms, peak RSS +${grew.toFixed(1)} MB`);
    if (!SANITIZED) assert.ok(grew < 64, `peak RSS grew ${grew.toFixed(1)} MB`);
  });

  test('--max-messages: a chat with more messages is a 400 naming messages', async () => {
    const r = await postJSON(srv.base + '/chat/completions', { messages: Array.from({ length: 17 }, () => ({ role: 'user', content: 'a' })), max_tokens: 1 });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.param, 'messages');
    assert.equal(r.json.error.code, 'array_above_max_length');
    const ok = await postJSON(srv.base + '/chat/completions', { messages: Array.from({ length: 16 }, () => ({ role: 'user', content: 'a' })), max_tokens: 1 });
    assert.equal(ok.status, 200);
  });

  test('text far beyond the context is refused before it is tokenized', async () => {
    const t0 = performance.now();
    const r = await postJSON(srv.base + '/completions', { prompt: 'Once upon a time '.repeat(200000), max_tokens: 1 });
    const ms = performance.now() - t0;
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, 'context_length_exceeded');
    assert.match(r.json.error.message, /bytes of text/);
    console.log(`# a 3.4 MB prompt refused in ${ms.toFixed(0)} ms`);
  });

  test('a full server answers 429 before it parses the body', async () => {
    const busy = await startServer(['-m', STORIES, '--chatml', '-c', '1024', '--parallel', '1', '--queue', '0']);
    try {
      // a long greedy answer holds the only slot
      const long = postJSON(busy.base + '/completions', { prompt: 'Once upon a time', max_tokens: 1000, temperature: 0, n: 1 });
      await sleep(50);
      const r = await request(busy.base + '/chat/completions', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: tinyMessages() });
      assert.equal(r.status, 429, r.body.slice(0, 200));
      assert.equal(r.headers['retry-after'], '1');
      // embeddings take a place too (they ran unbounded beside the queue)
      const em = await postJSON(busy.base + '/embeddings', { input: ['a', 'b'] });
      assert.equal(em.status, 429, JSON.stringify(em.json));
      assert.equal((await long).status, 200);
    } finally {
      assert.equal(await busy.stop(), 0);
    }
  });

  test('the router refuses the same bodies unparsed (the shared JSON opening counts values)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ponder-admission-'));
    const cfg = path.join(dir, 'route.yaml');
    fs.writeFileSync(cfg, `model_list:\n  - model_name: stories\n    backends: [{local: ${path.resolve(STORIES)}}]\n`);
    const rt = await startServer(['--config', cfg, '--chatml', '-c', '1024']);
    try {
      await postJSON(rt.base + '/chat/completions', { model: 'stories', messages: [{ role: 'user', content: 'Once' }], max_tokens: 2 });
      const before = peakMB(rt.proc.pid);
      const body = tinyMessages().replace('{', '{"model":"stories",');
      const rs = await Promise.all(Array.from({ length: 32 }, () => request(rt.base + '/chat/completions',
        { method: 'POST', headers: { 'Content-Type': 'application/json' }, body })));
      for (const r of rs) {
        assert.equal(r.status, 400, r.body.slice(0, 200));
        assert.equal(JSON.parse(r.body).error.code, 'request_too_complex');
      }
      const grew = peakMB(rt.proc.pid) - before;
      console.log(`# router: 32 x ${(body.length / 1e6).toFixed(1)} MB of tiny messages refused, peak RSS +${grew.toFixed(1)} MB`);
      if (!SANITIZED) assert.ok(grew < 64, `peak RSS grew ${grew.toFixed(1)} MB`);
    } finally {
      assert.equal(await rt.stop(), 0);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('logprobs: memory grows with the request\'s tokens, not choices x tokens', async () => {
    const before = peakMB(srv.proc.pid);
    const prompts = Array.from({ length: 128 }, (_, i) => `Story ${i}: once upon a time`);
    const r = await postJSON(srv.base + '/completions', { prompt: prompts, max_tokens: 200, logprobs: 5, temperature: 0 });
    assert.equal(r.status, 200);
    const tokens = r.json.usage.completion_tokens;
    const grew = peakMB(srv.proc.pid) - before;
    console.log(`# 128 prompts x up to 200 tokens, logprobs 5: ${tokens} tokens, peak RSS +${grew.toFixed(1)} MB`);
    assert.equal(r.json.choices.length, 128);
    for (const c of r.json.choices) assert.equal(c.logprobs.tokens.length, c.logprobs.top_logprobs.length);
    // a token's logprob record is well under 1 KB in every buffer it passes through
    if (!SANITIZED) assert.ok(grew < 16 + tokens * 2 / 1024, `peak RSS grew ${grew.toFixed(1)} MB for ${tokens} tokens`);
  });
});
