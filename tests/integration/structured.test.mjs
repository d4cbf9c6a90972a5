// Structured outputs through the official openai client on a random-weight model (which
// unconstrained writes garbage): response_format json_schema for every schema of
// tests/grammar/data/schemas.jsonl on chat completions (n = 2, sampled) and completions,
// streamed and not, json_object mode, llama-server's "grammar", and the 400s naming an
// unsupported keyword. Every answer must parse and validate (a small validator below,
// independent of the server's compiler).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import OpenAI from 'openai';
import { startServer, SMOLLM, haveFile } from './helpers.mjs';

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

// ---- a small JSON Schema validator (the keywords the compiler takes) ----
function resolve(root, ref) {
  let t = root;
  for (const part of ref.replace(/^#\/?/, '').split('/').filter((p) => p.length)) t = t?.[part];
  return t;
}
const typeOk = (v, t) => ({
  object: v !== null && typeof v === 'object' && !Array.isArray(v),
  array: Array.isArray(v), string: typeof v === 'string', boolean: typeof v === 'boolean', null: v === null,
  number: typeof v === 'number', integer: Number.isInteger(v),
})[t];
const equal = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const FORMATS = {
  date: /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/,
  time: /^([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$/,
  'date-time': /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$/,
  uuid: /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/,
  email: /^[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]+)*@[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/,
  hostname: /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/,
  ipv4: /^((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/,
  ipv6: /^([0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}$/,
  uri: /^https?:\/\/[^\s/$.?#].[^\s]*$/,
  duration: /^P(?!$)((\d+Y)?(\d+M)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?|(\d+W)?)$/,
};
function validate(root, s, v, path = '') {
  if (s === true) return null;
  if (s === false) return `${path}: schema false`;
  if (s.$ref) return validate(root, resolve(root, s.$ref), v, path);
  if ('const' in s && !equal(s.const, v)) return `${path}: not the const`;
  if (s.enum && !s.enum.some((e) => equal(e, v))) return `${path}: not in enum`;
  if (s.anyOf && !s.anyOf.some((a) => !validate(root, a, v, path))) return `${path}: no anyOf alternative`;
  if (s.oneOf && s.oneOf.filter((a) => !validate(root, a, v, path)).length !== 1) return `${path}: not exactly one oneOf`;
  for (const a of s.allOf ?? []) { const e = validate(root, a, v, path); if (e) return e; }
  if (s.type && ![s.type].flat().some((t) => typeOk(v, t))) return `${path}: wrong type`;
  if (typeOk(v, 'object')) {
    for (const k of s.required ?? []) if (!(k in v)) return `${path}: missing ${k}`;
    for (const [k, x] of Object.entries(v)) {
      if (s.properties && k in s.properties) { const e = validate(root, s.properties[k], x, `${path}/${k}`); if (e) return e; }
      else if (s.additionalProperties === false) return `${path}/${k}: additional property`;
      else if (typeof s.additionalProperties === 'object') { const e = validate(root, s.additionalProperties, x, `${path}/${k}`); if (e) return e; }
    }
  }
  if (Array.isArray(v)) {
    if (s.minItems !== undefined && v.length < s.minItems) return `${path}: too few items`;
    if (s.maxItems !== undefined && v.length > s.maxItems) return `${path}: too many items`;
    for (let i = 0; i < v.length; i++) {
      const is = i < (s.prefixItems?.length ?? 0) ? s.prefixItems[i] : s.items;
      if (is === false) return `${path}/${i}: item not allowed`;
      if (is !== undefined) { const e = validate(root, is, v[i], `${path}/${i}`); if (e) return e; }
    }
  }
  if (typeof v === 'string') {
    const n = [...v].length;
    if (s.minLength !== undefined && n < s.minLength) return `${path}: too short`;
    if (s.maxLength !== undefined && n > s.maxLength) return `${path}: too long`;
    if (s.pattern && !new RegExp(s.pattern, 'u').test(v)) return `${path}: pattern`;
    if (s.format && FORMATS[s.format] && !FORMATS[s.format].test(v)) return `${path}: format ${s.format}`;
  }
  if (typeof v === 'number') {
    if (s.minimum !== undefined && v < s.minimum) return `${path}: below minimum`;
    if (s.maximum !== undefined && v > s.maximum) return `${path}: above maximum`;
    if (s.exclusiveMinimum !== undefined && v <= s.exclusiveMinimum) return `${path}: exclusiveMinimum`;
    if (s.exclusiveMaximum !== undefined && v >= s.exclusiveMaximum) return `${path}: exclusiveMaximum`;
  }
  return null;
}

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
