// The prompt cache across requests (on by default; --no-cache-prompt turns it off), through
// the openai client: each turn of a conversation re-sends the ones before, which the last
// request left in its sequence, so only the new part is evaluated —
// usage.prompt_tokens_details.cached_tokens and ponder.prompt_tokens_cached say how much,
// ponder.prompt_tokens_evaluated the rest — and every answer is the one a server without
// the cache gives (greedy).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, STORIES } from './helpers.mjs';

let cached, plain, cc, pc;
before(async () => {
  cached = await startServer(['-m', STORIES, '--chatml', '--parallel', '2', '-c', '512']);
  plain = await startServer(['-m', STORIES, '--chatml', '--parallel', '2', '-c', '512', '--no-cache-prompt']);
  cc = new OpenAI({ baseURL: cached.base, apiKey: 'unused', maxRetries: 0 });
  pc = new OpenAI({ baseURL: plain.base, apiKey: 'unused', maxRetries: 0 });
});
after(async () => {
  assert.equal(await cached.stop(), 0);
  assert.equal(await plain.stop(), 0);
});

test('a conversation: later turns reuse the earlier ones, answers as without the cache', async () => {
  const messages = [];
  const users = ['Tell me about a cat.', 'What did the cat eat?', 'And then?', 'Where did it sleep?'];
  for (const [turn, text] of users.entries()) {
    messages.push({ role: 'user', content: text });
    const req = { model: 'stories260K', messages, max_tokens: 12, temperature: 0 };
    const a = await cc.chat.completions.create(req);
    const b = await pc.chat.completions.create(req);
    assert.equal(a.choices[0].message.content, b.choices[0].message.content, `turn ${turn + 1}`);
    assert.equal(a.usage.prompt_tokens, b.usage.prompt_tokens);
    const hit = a.usage.prompt_tokens_details.cached_tokens;
    assert.equal(b.usage.prompt_tokens_details.cached_tokens, 0);
    assert.equal(a.ponder.prompt_tokens_cached, hit);
    assert.equal(a.ponder.prompt_tokens_evaluated, a.usage.prompt_tokens - hit);
    if (turn > 0) assert.ok(hit > a.usage.prompt_tokens / 2, `turn ${turn + 1}: ${hit} of ${a.usage.prompt_tokens} cached`);
    messages.push({ role: 'assistant', content: a.choices[0].message.content });
  }
});

test('the same completions prompt twice: all but its last token come from the cache', async () => {
  const req = { model: 'stories260K', prompt: 'Once upon a time there was a little dog', max_tokens: 6, temperature: 0 };
  const first = await cc.completions.create(req);
  const again = await cc.completions.create(req);
  assert.equal(again.choices[0].text, first.choices[0].text);
  assert.equal(again.usage.prompt_tokens_details.cached_tokens, again.usage.prompt_tokens - 1);
  const streamed = await cc.completions.create({ ...req, stream: true, stream_options: { include_usage: true } });
  let text = '', usage = null;
  for await (const chunk of streamed) {
    text += chunk.choices[0]?.text ?? '';
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(text, first.choices[0].text);
  assert.equal(usage.prompt_tokens_details.cached_tokens, usage.prompt_tokens - 1);
});

test('"cache_prompt": false (llama-server\'s field) evaluates the whole prompt, same answer; the next request reuses again', async () => {
  const req = { model: 'stories260K', prompt: 'One day a big bird flew over the town and', max_tokens: 6, temperature: 0 };
  const first = await cc.completions.create(req);
  const bypass = await cc.completions.create({ ...req, cache_prompt: false });
  assert.equal(bypass.choices[0].text, first.choices[0].text);
  assert.equal(bypass.usage.prompt_tokens_details.cached_tokens, 0);
  assert.equal(bypass.ponder.prompt_tokens_evaluated, bypass.usage.prompt_tokens);
  const chat = { model: 'stories260K', messages: [{ role: 'user', content: 'A story about a fox.' }], max_tokens: 8, temperature: 0 };
  await cc.chat.completions.create(chat);
  const c2 = await cc.chat.completions.create({ ...chat, cache_prompt: false });
  assert.equal(c2.usage.prompt_tokens_details.cached_tokens, 0);
  const c3 = await cc.chat.completions.create({ ...chat, cache_prompt: true });
  assert.equal(c3.usage.prompt_tokens_details.cached_tokens, c3.usage.prompt_tokens - 1);
  assert.equal(c3.choices[0].message.content, c2.choices[0].message.content);
  const bad = await fetch(cached.base + '/completions', { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ ...req, cache_prompt: 'no' }) });
  assert.equal(bad.status, 400);
  assert.equal((await bad.json()).error.param, 'cache_prompt');
});
