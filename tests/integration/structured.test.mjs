// Structured outputs through the official openai client on a random-weight model (which
// unconstrained writes garbage): response_format json_schema for every schema of
// tests/grammar/data/schemas.jsonl on chat completions (n = 2, sampled) and completions,
// streamed and not, json_object mode, llama-server's "grammar", and the 400s naming an
// unsupported keyword. Every answer must parse and validate (jsonschema.mjs,
// independent of the server's compiler).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import OpenAI from 'openai';
import { startServer, SMOLLM, haveFile } from './helpers.mjs';
import { validate } from './jsonschema.mjs';

const SCHEMAS = fs.readFileSync(new URL('../grammar/data/schemas.jsonl', import.meta.url), 'utf8')
  .split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
const MAX_TOKENS = 160;
let srv, client;
const skip = !haveFile(SMOLLM) && 'the SmolLM2-vocabulary synthetic model is missing';

before(async () => {
  if (skip) return;
  srv = await startServer(['-m', SMOLLM, '--parallel', '2', '-c', '1024']);
  client = new OpenAI({ baseURL: srv.base, apiKey: 'unused', maxRetries: 0 });
});
after(async () => { if (srv) assert.equal(await srv.stop(), 0, 'clean exit on SIGTERM'); });

function check(name, schema, text, finish) {
  assert.ok(['stop', 'length'].includes(finish), `${name}: finish_reason ${finish}`);
  let v;
  try { v = JSON.parse(text); } catch (e) { assert.fail(`${name} (${finish}): not JSON: ${e.message}: ${text}`); }
  const why = validate(schema, schema, v);
  assert.equal(why, null, `${name}: ${why}: ${text}`);
}

const chat = (content) => [{ role: 'user', content }];
const fmt = (name, schema) => ({ type: 'json_schema', json_schema: { name, schema, strict: true } });

test(`chat: ${SCHEMAS.length} schemas, n = 2 sampled, every choice valid`, { skip }, async () => {
  assert.ok(SCHEMAS.length >= 30);
  let stop = 0, cut = 0;
  for (const [i, { name, schema }] of SCHEMAS.entries()) {
    const r = await client.chat.completions.create({
      messages: chat('Give me some JSON.'), response_format: fmt(name, schema), n: 2, temperature: 1, seed: 100 + i,
      max_tokens: MAX_TOKENS,
    });
    assert.equal(r.choices.length, 2);
    for (const c of r.choices) {
      check(name, schema, c.message.content, c.finish_reason);
      if (c.finish_reason === 'stop') stop++; else cut++;
    }
  }
  console.log(`# ${2 * SCHEMAS.length} chat answers valid: ${stop} stop, ${cut} length (closed within max_tokens)`);
});

test('completions and streaming: valid, and the stream adds up to the same text', { skip }, async () => {
  for (const { name, schema } of SCHEMAS.filter((_, i) => i % 5 === 0)) {
    const req = { model: 'syn-tiny-smollm-Q4_K_M', prompt: 'JSON:', response_format: fmt(name, schema), temperature: 0, max_tokens: MAX_TOKENS };
    const whole = await client.completions.create(req);
    check(name, schema, whole.choices[0].text, whole.choices[0].finish_reason);
    const stream = await client.completions.create({ ...req, stream: true });
    let text = '', finish = null;
    for await (const chunk of stream) {
      for (const c of chunk.choices) { text += c.text ?? ''; finish = c.finish_reason ?? finish; }
    }
    assert.equal(text, whole.choices[0].text, `${name}: streamed text`);
    assert.equal(finish, whole.choices[0].finish_reason);
  }
});

test('json_object mode gives an object; "grammar" takes GBNF', { skip }, async () => {
  for (let seed = 0; seed < 4; seed++) {
    const r = await client.chat.completions.create({
      messages: chat('An object, please.'), response_format: { type: 'json_object' }, seed, temperature: 1, max_tokens: 80,
    });
    const v = JSON.parse(r.choices[0].message.content);
    assert.ok(v !== null && typeof v === 'object' && !Array.isArray(v));
  }
  const g = await client.completions.create({
    prompt: 'Yes or no?', grammar: 'root ::= ("yes" | "no") "."', temperature: 1, seed: 3, max_tokens: 10,
  });
  assert.match(g.choices[0].text, /^(yes|no)\.$/);
  assert.equal(g.choices[0].finish_reason, 'stop');
});

test('an unsupported keyword or a malformed schema is a 400 naming it', { skip }, async () => {
  const bad = async (response_format, param, re) => {
    await assert.rejects(
      client.chat.completions.create({ messages: chat('x'), response_format, max_tokens: 5 }),
      (e) => e.status === 400 && e.param === param && re.test(e.message));
  };
  await bad(fmt('n', { type: 'object', properties: { a: { not: { type: 'string' } } } }),
    'response_format.json_schema.schema', /unsupported JSON Schema keyword 'not' at \/properties\/a/);
  await bad(fmt('n', { type: 'array', uniqueItems: true }), 'response_format.json_schema.schema', /'uniqueItems'/);
  await bad(fmt('n', { type: 'string', format: 'idn-email' }), 'response_format.json_schema.schema', /format 'idn-email'/);
  await bad({ type: 'json_schema', json_schema: { name: 'n' } }, 'response_format.json_schema.schema', /Missing/);
  await bad({ type: 'yaml' }, 'response_format.type', /'yaml'/);
  await assert.rejects(client.completions.create({ prompt: 'x', grammar: 'root ::= a', max_tokens: 5 }),
    (e) => e.status === 400 && e.param === 'grammar' && /1:10: undefined rule 'a'/.test(e.message));
});
