// ponder serve through the official openai client: chat and completions, plain and
// streaming, n > 1, seeds, stop sequences, logprobs, usage, and every error the client
// should see as an APIError with OpenAI's status, code and param.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, STORIES, usageCounts } from './helpers.mjs';

let srv, client;
const MODEL = 'stories260K';
const chat = (content) => [{ role: 'user', content }];

before(async () => {
  srv = await startServer(['-m', STORIES, '--chatml', '--parallel', '4', '-c', '512']);
  client = new OpenAI({ baseURL: srv.base, apiKey: 'unused', maxRetries: 0 });
});
after(async () => { assert.equal(await srv.stop(), 0, 'clean exit on SIGTERM'); });

test('GET /v1/models lists the served model', async () => {
  const list = await client.models.list();
  assert.deepEqual(list.data.map((m) => m.id), [MODEL]);
  assert.equal(list.data[0].object, 'model');
  const m = await client.models.retrieve(MODEL);
  assert.equal(m.id, MODEL);
});

test('chat completion: OpenAI shape, usage and the ponder object', async () => {
  const r = await client.chat.completions.create({ model: MODEL, messages: chat('Tell me a story.'), max_tokens: 12, temperature: 0 });
  assert.match(r.id, /^chatcmpl-/);
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.model, MODEL);
  assert.equal(typeof r.created, 'number');
  assert.match(r.system_fingerprint, /^fp_/);
  assert.equal(r.choices.length, 1);
  const c = r.choices[0];
  assert.equal(c.index, 0);
  assert.equal(c.message.role, 'assistant');
  assert.equal(typeof c.message.content, 'string');
  assert.ok(c.message.content.length > 0);
  assert.ok(['stop', 'length'].includes(c.finish_reason));
  assert.equal(c.logprobs, null);
  assert.ok(r.usage.prompt_tokens > 5);
  assert.ok(r.usage.completion_tokens >= 1 && r.usage.completion_tokens <= 12);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  if (c.finish_reason === 'length') assert.equal(r.usage.completion_tokens, 12);
  for (const k of ['flops', 'wall_ms', 'prompt_tokens_evaluated', 'tokens_per_s']) assert.equal(typeof r.ponder[k], 'number', k);
  assert.ok(r.ponder.flops > 0);
  assert.equal(r.ponder.prompt_tokens_evaluated, r.usage.prompt_tokens);
});

test('max_completion_tokens bounds the answer like max_tokens', async () => {
  const r = await client.chat.completions.create({ messages: chat('Once'), max_completion_tokens: 3, temperature: 0 });
  assert.equal(r.usage.completion_tokens, 3);
  assert.equal(r.choices[0].finish_reason, 'length');
});

test('streaming chat equals the same request unstreamed, with role first and usage last', async () => {
  const req = { model: MODEL, messages: chat('A dog'), max_tokens: 20, temperature: 0 };
  const whole = await client.chat.completions.create(req);
  const stream = await client.chat.completions.create({ ...req, stream: true, stream_options: { include_usage: true } });
  const chunks = [];
  for await (const ch of stream) chunks.push(ch);
  assert.equal(chunks[0].object, 'chat.completion.chunk');
  assert.equal(chunks[0].choices[0].delta.role, 'assistant');
  const ids = new Set(chunks.map((c) => c.id));
  assert.equal(ids.size, 1);
  assert.match([...ids][0], /^chatcmpl-/);
  const text = chunks.filter((c) => c.choices.length).map((c) => c.choices[0].delta.content ?? '').join('');
  assert.equal(text, whole.choices[0].message.content);
  const finals = chunks.filter((c) => c.choices.length && c.choices[0].finish_reason);
  assert.equal(finals.length, 1);
  assert.equal(finals[0].choices[0].finish_reason, whole.choices[0].finish_reason);
  const last = chunks[chunks.length - 1];
  assert.deepEqual(last.choices, []);
  assert.deepEqual(usageCounts(last.usage), usageCounts(whole.usage));
  for (const c of chunks.slice(0, -1)) assert.equal(c.usage, null);
  assert.ok(last.ponder.tokens_per_s > 0);
});

test('completions: text, streaming equal to whole, legacy logprobs', async () => {
  const req = { model: MODEL, prompt: 'Once upon a time', max_tokens: 10, temperature: 0 };
  const whole = await client.completions.create({ ...req, logprobs: 2 });
  assert.match(whole.id, /^cmpl-/);
  assert.equal(whole.object, 'text_completion');
  const c = whole.choices[0];
  assert.ok(c.text.length > 0);
  const lp = c.logprobs;
  assert.equal(lp.tokens.length, whole.usage.completion_tokens);
  assert.equal(lp.token_logprobs.length, lp.tokens.length);
  assert.equal(lp.top_logprobs.length, lp.tokens.length);
  assert.equal(lp.text_offset.length, lp.tokens.length);
  assert.equal(lp.text_offset[0], 0);
  for (let i = 0; i < lp.tokens.length; i++) {
    assert.ok(lp.token_logprobs[i] <= 0);
    const alts = Object.entries(lp.top_logprobs[i]);
    assert.ok(alts.length >= 1 && alts.length <= 2);
    // greedy: the chosen token is the best alternative
    const best = Math.max(...alts.map(([, v]) => v));
    assert.ok(Math.abs(best - lp.token_logprobs[i]) < 1e-6);
    if (i > 0) assert.equal(lp.text_offset[i], lp.text_offset[i - 1] + lp.tokens[i - 1].length);
  }
  assert.equal(lp.tokens.join(''), c.text);
  const stream = await client.completions.create({ ...req, stream: true });
  let text = '';
  let finish = null;
  for await (const ch of stream) {
    assert.equal(ch.object, 'text_completion');
    text += ch.choices[0]?.text ?? '';
    finish = ch.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(text, c.text);
  assert.equal(finish, c.finish_reason);
});

test('completions with several prompts: n choices each, prompt-major, each as its prompt alone', async () => {
  const prompts = ['Once upon a time', 'The little dog', 'Lily'];
  const req = { model: MODEL, max_tokens: 8, temperature: 0, n: 2 };
  const r = await client.completions.create({ ...req, prompt: prompts });
  assert.deepEqual(r.choices.map((c) => c.index), [0, 1, 2, 3, 4, 5]);
  let prompt_tokens = 0;
  for (let i = 0; i < prompts.length; i++) {
    const alone = await client.completions.create({ ...req, prompt: prompts[i], n: 1 });
    prompt_tokens += alone.usage.prompt_tokens;
    for (let j = 0; j < 2; j++) assert.equal(r.choices[i * 2 + j].text, alone.choices[0].text, `prompt ${i} choice ${j}`);
  }
  assert.equal(r.usage.prompt_tokens, prompt_tokens);
  // streamed: the same texts under the same indices, one finish each
  const stream = await client.completions.create({ ...req, prompt: prompts, stream: true });
  const texts = Array(6).fill(''), fins = Array(6).fill(0);
  for await (const ch of stream) for (const c of ch.choices) { texts[c.index] += c.text; if (c.finish_reason) fins[c.index]++; }
  assert.deepEqual(texts, r.choices.map((c) => c.text));
  assert.deepEqual(fins, [1, 1, 1, 1, 1, 1]);
  // token-id arrays as well
  const ids = await client.completions.create({ ...req, n: 1, prompt: [[1, 400, 30], [1, 31]] });
  assert.equal(ids.choices.length, 2);
  assert.equal(ids.usage.prompt_tokens, 5);
});

test('ponder strategies: the request object, the model-name prefix, one streamed chunk', async () => {
  const req = { messages: chat('Tom has 2 cats and 3 dogs. How many pets?'), max_tokens: 16, temperature: 0.8, seed: 4 };
  const sc = await client.chat.completions.create({ ...req, model: 'sc4-' + MODEL });
  assert.equal(sc.choices.length, 1);
  assert.equal(sc.ponder.strategy, 'sc:4');
  assert.equal(sc.ponder.samples, 4);
  assert.equal(sc.ponder.chains.length, 4);
  const answered = sc.ponder.chains.filter((c) => c.answer !== null).length;
  assert.equal(Object.values(sc.ponder.votes).reduce((a, b) => a + b, 0), answered);
  assert.equal(sc.ponder.prompt_tokens_evaluated, sc.usage.prompt_tokens); // once for all chains
  // the same through "ponder" in the body
  const body = await client.chat.completions.create({ ...req, ponder: { strategy: 'sc', samples: 4 } });
  assert.equal(body.choices[0].message.content, sc.choices[0].message.content);
  assert.deepEqual(body.ponder.votes, sc.ponder.votes);
  // streamed: the whole answer as one content chunk
  const stream = await client.chat.completions.create({ ...req, model: 'sc4-' + MODEL, stream: true });
  const contents = [];
  let last;
  for await (const ch of stream) { const d = ch.choices[0]?.delta?.content; if (d) contents.push(d); last = ch; }
  assert.deepEqual(contents, [sc.choices[0].message.content]);
  assert.equal(last.ponder.strategy, 'sc:4');
  // completions, best-of-N
  const bon = await client.completions.create({ prompt: 'Once upon a time', max_tokens: 10, temperature: 1, seed: 2, ponder: { strategy: 'bon', samples: 3 } });
  const means = bon.ponder.chains.map((c) => c.mean_logprob);
  assert.equal(bon.ponder.best, means.indexOf(Math.max(...means)));
  // more chains than --parallel 4: rounds of 4 (was a 400)
  const sc16 = await client.chat.completions.create({ ...req, model: 'sc16-' + MODEL });
  assert.equal(sc16.ponder.samples, 16);
  assert.equal(sc16.ponder.rounds, 4);
});

test('chat logprobs: one entry per token with bytes and sorted top_logprobs', async () => {
  const r = await client.chat.completions.create({ messages: chat('Hi'), max_tokens: 8, temperature: 0, logprobs: true, top_logprobs: 3 });
  const content = r.choices[0].logprobs.content;
  assert.equal(content.length, r.usage.completion_tokens);
  for (const t of content) {
    assert.equal(typeof t.token, 'string');
    assert.ok(t.logprob <= 0);
    assert.ok(Array.isArray(t.bytes));
    assert.equal(Buffer.from(t.bytes).toString(), t.token);
    assert.equal(t.top_logprobs.length, 3);
    for (let i = 1; i < 3; i++) assert.ok(t.top_logprobs[i - 1].logprob >= t.top_logprobs[i].logprob);
    assert.equal(t.top_logprobs[0].token, t.token); // greedy
  }
});

test('n > 1: one batch, n choices; greedy choices are identical, sampled ones follow seed + i', async () => {
  const g = await client.chat.completions.create({ messages: chat('Cat'), max_tokens: 10, temperature: 0, n: 3 });
  assert.equal(g.choices.length, 3);
  assert.deepEqual(g.choices.map((c) => c.index), [0, 1, 2]);
  assert.ok(g.choices.every((c) => c.message.content === g.choices[0].message.content));
  assert.equal(g.usage.completion_tokens, 3 * 10);
  assert.equal(g.ponder.prompt_tokens_evaluated, g.usage.prompt_tokens); // the prompt ran once

  const req = { prompt: 'The little bird', max_tokens: 16, temperature: 1.0 };
  const many = await client.completions.create({ ...req, n: 3, seed: 100 });
  const one = await client.completions.create({ ...req, seed: 101 });
  assert.equal(many.choices.length, 3);
  assert.equal(many.choices[1].text, one.choices[0].text, 'choice i samples with seed + i');
});

test('n larger than --parallel is a 400 naming n', async () => {
  await assert.rejects(client.chat.completions.create({ messages: chat('x'), n: 5 }), (e) => e.status === 400 && e.param === 'n');
});

test('seed reproducibility', async () => {
  const req = { messages: chat('Once upon a time'), max_tokens: 24, temperature: 1.0, top_p: 0.95 };
  const a = await client.chat.completions.create({ ...req, seed: 7 });
  const b = await client.chat.completions.create({ ...req, seed: 7 });
  assert.equal(a.choices[0].message.content, b.choices[0].message.content);
  const texts = new Set();
  for (const seed of [1, 2, 3, 4]) texts.add((await client.chat.completions.create({ ...req, seed })).choices[0].message.content);
  assert.ok(texts.size > 1, 'different seeds give different texts');
});

test('stop sequences end the text before the match, finish_reason stop', async () => {
  const req = { prompt: 'Once upon a time', max_tokens: 40, temperature: 0 };
  const full = (await client.completions.create(req)).choices[0].text;
  const words = full.split(' ').filter((w) => w.length >= 3);
  assert.ok(words.length >= 2, full);
  const stop = ' ' + words[1];
  const cut = full.indexOf(stop);
  const r = await client.completions.create({ ...req, stop: [stop, 'zzzz-never'] });
  assert.equal(r.choices[0].text, full.slice(0, cut));
  assert.equal(r.choices[0].finish_reason, 'stop');
  const s = await client.completions.create({ ...req, stop, stream: true });
  let text = '';
  for await (const ch of s) text += ch.choices[0]?.text ?? '';
  assert.equal(text, full.slice(0, cut));
});

test('penalties and sampling knobs are accepted', async () => {
  const r = await client.chat.completions.create({ messages: chat('x'), max_tokens: 5, temperature: 0.8, top_p: 0.9, presence_penalty: 1, frequency_penalty: 0.5, seed: 3, user: 'me', top_k: 20, min_p: 0.05, some_unknown_field: 1 });
  assert.equal(r.choices.length, 1);
});

test('errors reach the client as OpenAI APIErrors', async () => {
  const bad = async (p, check) => assert.rejects(p, (e) => { check(e); return true; });
  await bad(client.chat.completions.create({ messages: chat('x'), temperature: 'hot' }), (e) => {
    assert.ok(e instanceof OpenAI.BadRequestError);
    assert.equal(e.status, 400);
    assert.equal(e.param, 'temperature');
    assert.equal(e.code, 'invalid_type');
    assert.equal(e.type, 'invalid_request_error');
    assert.match(e.message, /temperature/);
  });
  await bad(client.chat.completions.create({ model: MODEL }), (e) => {
    assert.equal(e.status, 400);
    assert.equal(e.param, 'messages');
  });
  await bad(client.chat.completions.create({ messages: chat('x'), max_tokens: 0 }), (e) => {
    assert.equal(e.status, 400);
    assert.equal(e.param, 'max_tokens');
  });
  await bad(client.chat.completions.create({ messages: chat('x'), stop: ['a', 'b', 'c', 'd', 'e'] }), (e) => {
    assert.equal(e.status, 400);
    assert.equal(e.param, 'stop');
  });
  await bad(client.chat.completions.create({ model: 'gpt-4o', messages: chat('x') }), (e) => {
    assert.ok(e instanceof OpenAI.NotFoundError);
    assert.equal(e.status, 404);
    assert.equal(e.code, 'model_not_found');
    assert.equal(e.param, 'model');
  });
  await bad(client.models.retrieve('nope'), (e) => { assert.equal(e.status, 404); assert.equal(e.code, 'model_not_found'); });
  // -c 512 per slot: a prompt of ~1000 tokens does not fit
  await bad(client.completions.create({ prompt: 'Once upon a time '.repeat(300), max_tokens: 1 }), (e) => {
    assert.equal(e.status, 400);
    assert.equal(e.code, 'context_length_exceeded');
    assert.match(e.message, /maximum context length is 512 tokens/);
    assert.match(e.message, /resulted in \d+ tokens/);
  });
  // the prompt fits, but not with the completion asked for: refused, not cut short
  await bad(client.completions.create({ prompt: 'Once upon a time', max_tokens: 600 }), (e) => {
    assert.equal(e.status, 400);
    assert.equal(e.param, 'max_tokens');
    assert.equal(e.code, 'context_length_exceeded');
    assert.match(e.message, /maximum context length is 512 tokens. However, you requested \d+ tokens \(\d+ in the prompt, 600 in the completion\)/);
  });
  await bad(client.chat.completions.create({ messages: chat('x'), max_completion_tokens: 512 }), (e) => {
    assert.equal(e.status, 400);
    assert.equal(e.param, 'max_tokens');
    assert.match(e.message, /in the messages, 512 in the completion/);
  });
  await bad(client.chat.completions.create({ messages: chat('story '.repeat(600)) }), (e) => {
    assert.equal(e.status, 400);
    assert.equal(e.code, 'context_length_exceeded');
  });
});
