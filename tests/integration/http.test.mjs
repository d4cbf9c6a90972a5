// ponder serve over raw HTTP: malformed bodies, 413/404/405, a slow client, a client that
// leaves mid-stream (its slot frees), 16 concurrent streams equal to the same requests
// alone, /health and /metrics; then a server with --api-key (401) and one with a tiny
// queue (429 + Retry-After).
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startServer, STORIES, SMOLLM, haveFile, request, postJSON, parseSSE, metrics, sleep } from './helpers.mjs';

const msg = (content) => [{ role: 'user', content }];

describe('one server, --parallel 4', () => {
  let srv;
  before(async () => { srv = await startServer(['-m', STORIES, '--chatml', '--parallel', '4', '-c', '1024']); });
  after(async () => { assert.equal(await srv.stop(), 0); });

  test('/health and GET / (the page)', async () => {
    const h = await request(srv.url + '/health');
    assert.equal(h.status, 200);
    assert.deepEqual(JSON.parse(h.body), { status: 'ok' });
    const page = await request(srv.url + '/');
    assert.equal(page.status, 200);
    assert.match(page.headers['content-type'], /text\/html/);
    assert.match(page.body, /<html/i);
  });

  test('malformed JSON is a 400 invalid_request_error', async () => {
    const r = await request(srv.base + '/chat/completions', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"messages": [' });
    assert.equal(r.status, 400);
    const e = JSON.parse(r.body).error;
    assert.equal(e.type, 'invalid_request_error');
    assert.equal(e.code, 'invalid_json');
    assert.deepEqual(Object.keys(e).sort(), ['code', 'message', 'param', 'type']);
    const r2 = await request(srv.base + '/completions', { method: 'POST', body: '"just a string"' });
    assert.equal(r2.status, 400);
  });

  test('a body over the limit is a 413', async () => {
    const big = JSON.stringify({ prompt: 'x'.repeat(5 * 1024 * 1024) });
    const r = await request(srv.base + '/completions', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: big });
    assert.equal(r.status, 413);
    assert.equal(JSON.parse(r.body).error.type, 'invalid_request_error');
  });

  test('unknown path 404, wrong method 405', async () => {
    const a = await request(srv.base + '/nope');
    assert.equal(a.status, 404);
    assert.match(JSON.parse(a.body).error.message, /Invalid URL \(GET \/v1\/nope\)/);
    const b = await request(srv.base + '/chat/completions');
    assert.equal(b.status, 405);
    assert.equal(b.headers.allow, 'POST');
    const c = await request(srv.url + '/health', { method: 'POST', body: '{}' });
    assert.equal(c.status, 405);
  });

  test('a slow client (body in pieces) is served, and does not hold up others', async () => {
    const body = JSON.stringify({ prompt: 'Once upon a time', max_tokens: 8, temperature: 0 });
    const u = new URL(srv.base + '/completions');
    const sock = net.connect(Number(u.port), u.hostname);
    await new Promise((r) => sock.once('connect', r));
    let resp = '';
    sock.on('data', (d) => { resp += d.toString(); });
    const ended = new Promise((r) => sock.once('end', r));
    sock.write(`POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`);
    const half = Math.floor(body.length / 2);
    sock.write(body.slice(0, half));
    // meanwhile another request is answered
    const other = await postJSON(srv.base + '/completions', { prompt: 'Once upon a time', max_tokens: 8, temperature: 0 });
    assert.equal(other.status, 200);
    await sleep(200);
    for (const ch of body.slice(half)) { sock.write(ch); }
    await ended;
    assert.match(resp, /^HTTP\/1\.1 200/);
    const json = JSON.parse(resp.slice(resp.indexOf('\r\n\r\n') + 4));
    assert.equal(json.choices[0].text, other.json.choices[0].text);
  });

  test('a client that leaves mid-stream frees its slot', async () => {
    const before = await metrics(srv.url);
    const u = new URL(srv.base + '/completions');
    const body = JSON.stringify({ prompt: 'Once upon a time', temperature: 0, stream: true }); // until the context is full
    const sock = net.connect(Number(u.port), u.hostname);
    await new Promise((r) => sock.once('connect', r));
    let got = '';
    const twoChunks = new Promise((resolve) => sock.on('data', (d) => { got += d.toString(); if ((got.match(/data: /g) || []).length >= 2) resolve(); }));
    sock.write(`POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    await twoChunks;
    sock.destroy();
    let m;
    for (let i = 0; i < 200; i++) { // poll until the engine has dropped it (not a timing assertion)
      m = await metrics(srv.url);
      if (m.ponder_active_slots === 0 && m.ponder_active_requests === 0) break;
      await sleep(25);
    }
    assert.equal(m.ponder_active_slots, 0);
    assert.equal(m.ponder_active_requests, 0);
    assert.equal(m.ponder_queue_depth, 0);
    // cancelled: it did not run to the end of a 1024-token context
    assert.ok(m.ponder_completion_tokens_total - before.ponder_completion_tokens_total < 1000);
    const after = await postJSON(srv.base + '/completions', { prompt: 'x', max_tokens: 2 });
    assert.equal(after.status, 200);
  });

  test('a client that leaves before a non-streaming answer cancels it', async () => {
    const before = await metrics(srv.url);
    const u = new URL(srv.base + '/completions');
    // four greedy choices until the 1024-token context is full: ~4000 tokens if not cancelled
    const body = JSON.stringify({ prompt: 'Once upon a time', temperature: 0, n: 4 });
    const sock = net.connect(Number(u.port), u.hostname);
    await new Promise((r) => sock.once('connect', r));
    sock.write(`POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    await sleep(20);
    sock.destroy();
    let m;
    for (let i = 0; i < 200; i++) {
      m = await metrics(srv.url);
      if (m.ponder_active_slots === 0 && m.ponder_active_requests === 0) break;
      await sleep(25);
    }
    assert.equal(m.ponder_active_requests, 0);
    assert.ok(m.ponder_completion_tokens_total - before.ponder_completion_tokens_total < 4000,
      `${m.ponder_completion_tokens_total - before.ponder_completion_tokens_total} tokens generated for a client that left`);
    const after = await postJSON(srv.base + '/completions', { prompt: 'x', max_tokens: 2 });
    assert.equal(after.status, 200);
  });

  test('16 concurrent streaming greedy requests equal the same requests alone', async () => {
    const reqs = Array.from({ length: 16 }, (_, i) => ({
      messages: msg(`Story number ${i}: once upon a time`), max_tokens: 24 + (i % 5), temperature: 0,
    }));
    const alone = [];
    for (const r of reqs) alone.push((await postJSON(srv.base + '/chat/completions', r)).json.choices[0].message.content);
    const streamed = await Promise.all(reqs.map(async (r) => {
      const res = await postJSON(srv.base + '/chat/completions', { ...r, stream: true });
      assert.equal(res.status, 200);
      assert.match(res.headers['content-type'], /text\/event-stream/);
      const ev = parseSSE(res.body);
      assert.equal(ev[ev.length - 1], '[DONE]');
      return ev.slice(0, -1).map((c) => c.choices[0]?.delta?.content ?? '').join('');
    }));
    assert.deepEqual(streamed, alone);
    const m = await metrics(srv.url);
    assert.equal(m.ponder_active_slots, 0);
  });

  test('/metrics: Prometheus text with counters and histograms', async () => {
    const r = await request(srv.url + '/metrics');
    assert.equal(r.status, 200);
    assert.match(r.headers['content-type'], /text\/plain/);
    const m = await metrics(srv.url);
    assert.ok(m['ponder_requests_total{code="200"}'] > 16);
    assert.ok(m['ponder_requests_total{code="400"}'] >= 2);
    assert.ok(m['ponder_requests_total{code="413"}'] >= 1);
    assert.ok(m.ponder_prompt_tokens_total > 0 && m.ponder_completion_tokens_total > 0);
    assert.ok(m.ponder_request_duration_seconds_count >= 16);
    assert.equal(m['ponder_request_duration_seconds_bucket{le="+Inf"}'], m.ponder_request_duration_seconds_count);
    assert.ok(m.ponder_time_to_first_token_seconds_count >= 16);
    for (const k of ['ponder_queue_depth', 'ponder_active_requests', 'ponder_active_slots']) assert.equal(typeof m[k], 'number');
  });
});

describe('--api-key', () => {
  let srv;
  before(async () => { srv = await startServer(['-m', STORIES, '--chatml', '--parallel', '1', '--api-key', 'sekrit']); });
  after(async () => { assert.equal(await srv.stop(), 0); });

  test('missing or wrong key: 401 invalid_api_key; right key: 200', async () => {
    const body = { messages: msg('x'), max_tokens: 2 };
    const none = await postJSON(srv.base + '/chat/completions', body);
    assert.equal(none.status, 401);
    assert.equal(none.json.error.type, 'invalid_request_error');
    assert.equal(none.json.error.code, 'invalid_api_key');
    const wrong = await postJSON(srv.base + '/chat/completions', body, { Authorization: 'Bearer nope' });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.json.error.code, 'invalid_api_key');
    const models = await request(srv.base + '/models');
    assert.equal(models.status, 401);
    const ok = await postJSON(srv.base + '/chat/completions', body, { Authorization: 'Bearer sekrit' });
    assert.equal(ok.status, 200);
    assert.equal((await request(srv.url + '/health')).status, 200); // health stays open
  });

  test('the openai client sees AuthenticationError', async () => {
    const { default: OpenAI } = await import('openai');
    const c = new OpenAI({ baseURL: srv.base, apiKey: 'bad', maxRetries: 0 });
    await assert.rejects(c.chat.completions.create({ messages: msg('x') }), (e) => e instanceof OpenAI.AuthenticationError && e.status === 401 && e.code === 'invalid_api_key');
  });
});

describe('bounded queue', () => {
  let srv;
  before(async () => { srv = await startServer(['-m', STORIES, '--chatml', '--parallel', '1', '--queue', '1']); });
  after(async () => { assert.equal(await srv.stop(), 0); });

  test('beyond --parallel + --queue requests in flight: 429 with Retry-After', async () => {
    // eight long requests at once; one runs, one waits, the rest must be refused
    const rs = await Promise.all(Array.from({ length: 8 }, () => postJSON(srv.base + '/completions', { prompt: 'Once upon a time', max_tokens: 1500, temperature: 0 })));
    const codes = rs.map((r) => r.status);
    assert.ok(codes.every((c) => c === 200 || c === 429), codes.join());
    assert.ok(codes.filter((c) => c === 200).length >= 2, codes.join());
    const refused = rs.filter((r) => r.status === 429);
    assert.ok(refused.length >= 1, codes.join());
    for (const r of refused) {
      assert.equal(r.headers['retry-after'], '1');
      assert.equal(r.json.error.code, 'rate_limit_exceeded');
    }
  });
});

describe('chat templates', () => {
  test('a model without a template and without --chatml: a 400 naming the fixes', async () => {
    const srv = await startServer(['-m', STORIES, '--parallel', '1']);
    try {
      const r = await postJSON(srv.base + '/chat/completions', { messages: msg('x') });
      assert.equal(r.status, 400);
      assert.equal(r.json.error.type, 'invalid_request_error');
      assert.equal(r.json.error.code, 'no_chat_template');
      assert.match(r.json.error.message, /no chat template.*\/v1\/completions.*--chatml/);
      const c = await postJSON(srv.base + '/completions', { prompt: 'x', max_tokens: 2 });
      assert.equal(c.status, 200); // completions need no template
    } finally { await srv.stop(); }
  });

  test('a model with its own template (SmolLM2-style) renders it', { skip: !haveFile(SMOLLM) && 'no SmolLM fixture' }, async (t) => {
    const srv = await startServer(['-m', SMOLLM, '--parallel', '1']);
    try {
      const r = await postJSON(srv.base + '/chat/completions', { messages: [{ role: 'system', content: 'S' }, { role: 'user', content: 'Hello' }], max_tokens: 4, temperature: 0 });
      if (r.status === 500 && /no chat template support/.test(r.json?.error?.message)) {
        t.skip('this ponder was built without src/chat');
        return;
      }
      assert.equal(r.status, 200, r.body);
      assert.equal(r.json.model, 'syn-tiny-smollm-Q4_K_M');
      // the template wraps each message in <|im_start|>role ... <|im_end|>: far more tokens than the words
      assert.ok(r.json.usage.prompt_tokens >= 10, String(r.json.usage.prompt_tokens));
    } finally { await srv.stop(); }
  });
});
