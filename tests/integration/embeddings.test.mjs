// POST /v1/embeddings through the official openai client: the vectors against llama.cpp's
// llama-embedding (shared/reference/embeddings, the README's tolerances), float and base64
// (the client's default) giving the same numbers, token-id inputs equal to their text,
// usage, and the errors a client should see (dimensions, empty input, too long, bad ids,
// unknown model, encoding_format).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';
import { startServer, postJSON, BIN, STORIES, SMOLLM } from './helpers.mjs';

const shared = process.env.PONDER_SHARED || process.env.PONDER_SHARED_DEFAULT || '../shared';
const reference = (name) => JSON.parse(fs.readFileSync(path.join(shared, 'reference/embeddings', name), 'utf8'));

let srv, client;
const MODEL = 'stories260K';
const N_CTX = 64;

before(async () => {
  srv = await startServer(['-m', STORIES, '-c', String(N_CTX), '--parallel', '2']);
  client = new OpenAI({ baseURL: srv.base, apiKey: 'unused', maxRetries: 0 });
});
after(async () => { assert.equal(await srv.stop(), 0, 'clean exit on SIGTERM'); });

// Token ids as llama-embedding takes a prompt (`ponder tokenize` with special texts parsed).
function tokenize(model, text) {
  const r = spawnSync(BIN, ['tokenize', '-m', model, '-p', text, '--ids', '--parse-special'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

function agreement(got, want) {
  let dot = 0, ng = 0, nw = 0, maxAbs = 0;
  for (let d = 0; d < want.length; d++) {
    dot += got[d] * want[d];
    ng += got[d] * got[d];
    nw += want[d] * want[d];
    maxAbs = Math.max(maxAbs, Math.abs(got[d] - want[d]));
  }
  return { cos: dot / Math.sqrt(ng * nw), maxAbs };
}

test('vectors match llama-embedding (stories260K, mean pooling), OpenAI shape and usage', async () => {
  const ref = reference('stories260K__mean.json');
  const r = await client.embeddings.create({ model: MODEL, input: ref.texts, encoding_format: 'float' });
  assert.equal(r.object, 'list');
  assert.equal(r.model, MODEL);
  assert.equal(r.data.length, ref.texts.length);
  let worst = { cos: 1, maxAbs: 0 };
  r.data.forEach((e, i) => {
    assert.equal(e.object, 'embedding');
    assert.equal(e.index, i);
    assert.equal(e.embedding.length, 64);
    const a = agreement(e.embedding, ref.embeddings[i]);
    worst = { cos: Math.min(worst.cos, a.cos), maxAbs: Math.max(worst.maxAbs, a.maxAbs) };
  });
  console.log(`served stories260K mean: min cosine ${worst.cos.toFixed(8)}, max |diff| ${worst.maxAbs.toExponential(2)}`);
  assert.ok(worst.cos >= 0.9999 && worst.maxAbs <= 1e-3, JSON.stringify(worst));
  const tokens = ref.texts.reduce((n, t) => n + tokenize(STORIES, t).length, 0);
  assert.equal(r.usage.prompt_tokens, tokens);
  assert.equal(r.usage.total_tokens, tokens);
});

test('base64 (the client\'s default) decodes to exactly the float response; one string is one item', async () => {
  const texts = ['Once upon a time', 'a'];
  const asFloat = await client.embeddings.create({ model: MODEL, input: texts, encoding_format: 'float' });
  const asDefault = await client.embeddings.create({ model: MODEL, input: texts });
  assert.deepEqual(asDefault.data.map((e) => e.embedding), asFloat.data.map((e) => Array.from(new Float32Array(e.embedding))));
  const raw = await postJSON(srv.base + '/embeddings', { input: texts, encoding_format: 'base64' });
  assert.equal(raw.status, 200);
  assert.equal(typeof raw.json.data[0].embedding, 'string');
  assert.equal(Buffer.from(raw.json.data[0].embedding, 'base64').length, 64 * 4);
  const one = await client.embeddings.create({ model: MODEL, input: 'Once upon a time', encoding_format: 'float' });
  assert.equal(one.data.length, 1);
  assert.deepEqual(one.data[0].embedding, asFloat.data[0].embedding);
  const norm = Math.hypot(...one.data[0].embedding);
  assert.ok(Math.abs(norm - 1) < 1e-5, `L2-normalised: ${norm}`);
});

test('token ids and lists of token-id lists give the same vectors as their text', async () => {
  const texts = ['The little dog ran to the park', 'Once upon a time'];
  const ids = texts.map((t) => tokenize(STORIES, t));
  const byText = await client.embeddings.create({ input: texts, encoding_format: 'float' });
  const byIds = await client.embeddings.create({ input: ids, encoding_format: 'float' });
  assert.deepEqual(byIds.data.map((e) => e.embedding), byText.data.map((e) => e.embedding));
  assert.equal(byIds.usage.prompt_tokens, ids[0].length + ids[1].length);
  const single = await client.embeddings.create({ input: ids[1], encoding_format: 'float' });
  assert.deepEqual(single.data[0].embedding, byText.data[1].embedding);
});

test('dimensions: the model\'s own size is accepted, any other is a 400 naming it', async () => {
  const ok = await client.embeddings.create({ input: 'a', dimensions: 64, encoding_format: 'float' });
  assert.equal(ok.data[0].embedding.length, 64);
  await assert.rejects(client.embeddings.create({ input: 'a', dimensions: 32 }), (e) => {
    assert.equal(e.status, 400);
    assert.equal(e.param, 'dimensions');
    assert.match(e.message, /64 dimensions/);
    return true;
  });
});

test('bad requests are OpenAI-shaped 4xx errors', async () => {
  const cases = [
    [{ input: '' }, 400, 'input', /empty/],
    [{ input: [] }, 400, 'input', /empty array/],
    [{}, 400, 'input', /Missing required parameter/],
    [{ input: 5 }, 400, 'input', /expected a string/],
    [{ input: ['a', [1, 2]] }, 400, 'input', /like the first/],
    [{ input: [1, 100000] }, 400, 'input', /not a token id/],
    [{ input: 'a '.repeat(N_CTX + 10) }, 400, 'input', /maximum context length is 64 tokens/],
    [{ input: 'a', encoding_format: 'int8' }, 400, 'encoding_format', /'float' or 'base64'/],
    [{ input: 'a', model: 'gpt-4' }, 404, 'model', /does not exist/],
  ];
  for (const [body, status, param, msg] of cases) {
    const r = await postJSON(srv.base + '/embeddings', body);
    assert.equal(r.status, status, JSON.stringify(body));
    assert.equal(r.json.error.param, param, JSON.stringify(body));
    assert.match(r.json.error.message, msg, JSON.stringify(body));
  }
});

test('a quantized model (syn-tiny-smollm Q4_K_M, SmolLM2 vocabulary) served: within the quantized tolerance', async () => {
  const ref = reference('syn-tiny-smollm-Q4_K_M__mean.json');
  const other = await startServer(['-m', SMOLLM, '-c', '256']);
  try {
    const c = new OpenAI({ baseURL: other.base, apiKey: 'unused', maxRetries: 0 });
    const r = await c.embeddings.create({ input: ref.texts });
    let worst = 1;
    r.data.forEach((e, i) => { worst = Math.min(worst, agreement(e.embedding, ref.embeddings[i]).cos); });
    console.log(`served syn-tiny-smollm-Q4_K_M mean: min cosine ${worst.toFixed(8)}`);
    assert.ok(worst >= 0.999, String(worst));
  } finally {
    assert.equal(await other.stop(), 0);
  }
});

test('through the router: a local and a remote backend give ponder serve\'s vectors; a dead first backend falls back', async () => {
  const os = await import('node:os');
  const { closedPort } = await import('./faults.mjs');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ponder-embed-route-'));
  const cfg = path.join(dir, 'router.yaml');
  const dead = await closedPort();
  fs.writeFileSync(cfg, 'model_list:\n' +
    `  - model_name: loc\n    backends:\n      - {local: "${STORIES}", ctx_size: ${N_CTX}}\n` +
    `  - model_name: rem\n    backends:\n      - {api_base: "http://127.0.0.1:${dead}/v1", model: x}\n      - {api_base: "${srv.base}", model: ${MODEL}}\n` +
    'routes:\n  auto:\n    cascade:\n      - {model: loc, strategy: "sc:2", accept_if: {agreement: 0.5}}\n      - {model: rem}\n');
  const rr = await startServer(['--config', cfg]);
  try {
    const texts = ['Once upon a time', 'The little dog ran to the park'];
    const direct = await client.embeddings.create({ model: MODEL, input: texts, encoding_format: 'float' });
    const rc = new OpenAI({ baseURL: rr.base, apiKey: 'unused', maxRetries: 0 });
    for (const model of ['loc', 'rem']) {
      const r = await rc.embeddings.create({ model, input: texts, encoding_format: 'float' });
      assert.equal(r.model, model);
      assert.deepEqual(r.data.map((e) => e.embedding), direct.data.map((e) => e.embedding), model);
      assert.deepEqual(r.usage, direct.usage);
      assert.equal(r.ponder.backend, model === 'loc' ? 'loc/0' : 'rem/1');
      assert.deepEqual(r.ponder.attempts.map((a) => a.outcome), model === 'loc' ? ['ok'] : ['connect', 'ok']);
    }
    const b64 = await rc.embeddings.create({ model: 'loc', input: texts }); // the client's default: base64
    assert.deepEqual(b64.data.map((e) => e.embedding), direct.data.map((e) => Array.from(new Float32Array(e.embedding))));
    const bad = await postJSON(rr.base + '/embeddings', { model: 'loc', input: [] });
    assert.equal(bad.status, 400, 'the backend\'s own 400');
    assert.equal(bad.json.error.param, 'input');
    assert.equal((await postJSON(rr.base + '/embeddings', { model: 'nope', input: 'a' })).status, 404);
    const casc = await postJSON(rr.base + '/embeddings', { model: 'auto', input: 'a' });
    assert.equal(casc.status, 400);
    assert.match(casc.json.error.message, /cascade route/);
  } finally {
    assert.equal(await rr.stop(), 0);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
