// `echo` on /v1/completions through the openai client: the prompt's text, then the same
// greedy answer as without echo; several prompts and n; streamed (the prompt comes first,
// one chunk per choice); token-id prompts (detokenized); echo with logprobs refused (400).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import OpenAI from 'openai';
import { startServer, postJSON, BIN, STORIES } from './helpers.mjs';

let srv, client;
before(async () => {
  srv = await startServer(['-m', STORIES, '--parallel', '4', '-c', '256']);
  client = new OpenAI({ baseURL: srv.base, apiKey: 'unused', maxRetries: 0 });
});
after(async () => { assert.equal(await srv.stop(), 0); });

const greedy = { model: 'stories260K', max_tokens: 8, temperature: 0 };

test('echo: the prompt, then the answer it gets without echo', async () => {
  const plain = await client.completions.create({ ...greedy, prompt: 'Once upon a time' });
  const echoed = await client.completions.create({ ...greedy, prompt: 'Once upon a time', echo: true });
  assert.equal(echoed.choices[0].text, 'Once upon a time' + plain.choices[0].text);
  assert.equal(echoed.usage.completion_tokens, plain.usage.completion_tokens);
  const off = await client.completions.create({ ...greedy, prompt: 'Once upon a time', echo: false });
  assert.equal(off.choices[0].text, plain.choices[0].text);
});

test('echo with several prompts and n: each choice starts with its own prompt', async () => {
  const prompts = ['Lily went', 'The dog'];
  const r = await client.completions.create({ ...greedy, prompt: prompts, n: 2, echo: true });
  assert.equal(r.choices.length, 4);
  for (const c of r.choices) assert.ok(c.text.startsWith(prompts[Math.floor(c.index / 2)]), JSON.stringify(c));
});

test('echo streamed: the prompt first, the whole text equal to the unstreamed one', async () => {
  const whole = await client.completions.create({ ...greedy, prompt: 'Tom had a ball', echo: true });
  const stream = await client.completions.create({ ...greedy, prompt: 'Tom had a ball', echo: true, stream: true });
  let text = '';
  let first = null;
  for await (const chunk of stream) {
    for (const c of chunk.choices) {
      if (first === null && c.text) first = c.text;
      text += c.text ?? '';
    }
  }
  assert.equal(first, 'Tom had a ball');
  assert.equal(text, whole.choices[0].text);
});

test('echo of a token-id prompt: its text', async () => {
  const r = spawnSync(BIN, ['tokenize', '-m', STORIES, '-p', 'Once upon a time', '--ids'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const ids = JSON.parse(r.stdout);
  const byIds = await client.completions.create({ ...greedy, prompt: ids, echo: true });
  const byText = await client.completions.create({ ...greedy, prompt: 'Once upon a time', echo: true });
  assert.equal(byIds.choices[0].text, byText.choices[0].text);
});

test('echo with logprobs, or not a boolean: 400 naming echo', async () => {
  await assert.rejects(client.completions.create({ ...greedy, prompt: 'Once', echo: true, logprobs: 1 }), (e) => {
    assert.equal(e.status, 400);
    assert.equal(e.param, 'echo');
    assert.match(e.message, /not supported/);
    return true;
  });
  const r = await postJSON(srv.base + '/completions', { prompt: 'Once', echo: 'yes' });
  assert.equal(r.status, 400);
  assert.equal(r.json.error.param, 'echo');
});
