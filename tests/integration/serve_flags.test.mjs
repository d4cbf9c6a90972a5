// ponder serve's start-up flags through the openai client: --alias (the served id), the
// API key from --api-key-file or $PONDER_API_KEY (not only argv, where `ps` shows it),
// and their usage errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { startServer, postJSON, BIN, STORIES } from './helpers.mjs';

const keyFile = (text) => {
  const p = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ponder-key-')), 'key');
  fs.writeFileSync(p, text, { mode: 0o600 });
  return p;
};

// A request with the key, one without, and one with a wrong key.
async function checkKey(srv, key) {
  const ok = new OpenAI({ baseURL: srv.base, apiKey: key, maxRetries: 0 });
  const r = await ok.completions.create({ prompt: 'Once', max_tokens: 2, temperature: 0 });
  assert.equal(r.choices.length, 1);
  const none = await postJSON(srv.base + '/completions', { prompt: 'Once', max_tokens: 2 });
  assert.equal(none.status, 401);
  const wrong = new OpenAI({ baseURL: srv.base, apiKey: key + 'x', maxRetries: 0 });
  await assert.rejects(wrong.models.list(), (e) => e.status === 401);
}

test('--alias NAME: the served id in /v1/models, responses and the model check', async () => {
  const srv = await startServer(['-m', STORIES, '--alias', 'story-teller', '--parallel', '1', '-c', '128']);
  try {
    const c = new OpenAI({ baseURL: srv.base, apiKey: 'unused', maxRetries: 0 });
    assert.deepEqual((await c.models.list()).data.map((m) => m.id), ['story-teller']);
    const r = await c.completions.create({ model: 'story-teller', prompt: 'Once', max_tokens: 2 });
    assert.equal(r.model, 'story-teller');
    const e = await c.embeddings.create({ model: 'story-teller', input: 'Once' });
    assert.equal(e.model, 'story-teller');
    await assert.rejects(c.completions.create({ model: 'stories260K', prompt: 'Once', max_tokens: 2 }),
      (err) => err.status === 404 && err.param === 'model');
  } finally { assert.equal(await srv.stop(), 0); }
});

test('--api-key-file FILE: the first line is the key (line end and trailing blanks dropped)', async () => {
  const srv = await startServer(['-m', STORIES, '--api-key-file', keyFile('s3cret-from-file \n# comment\n'), '--parallel', '1', '-c', '128']);
  try { await checkKey(srv, 's3cret-from-file'); } finally { assert.equal(await srv.stop(), 0); }
});

test('PONDER_API_KEY: the key when no flag gives one; a flag wins over it', async () => {
  const saved = process.env.PONDER_API_KEY;
  process.env.PONDER_API_KEY = 'env-key';
  try {
    const srv = await startServer(['-m', STORIES, '--parallel', '1', '-c', '128']);
    try { await checkKey(srv, 'env-key'); } finally { assert.equal(await srv.stop(), 0); }
    const flag = await startServer(['-m', STORIES, '--api-key', 'flag-key', '--parallel', '1', '-c', '128']);
    try { await checkKey(flag, 'flag-key'); } finally { assert.equal(await flag.stop(), 0); }
  } finally {
    if (saved === undefined) delete process.env.PONDER_API_KEY; else process.env.PONDER_API_KEY = saved;
  }
});

test('usage errors: exit 2 with one line naming the problem', () => {
  const cases = [
    [['-m', STORIES, '--api-key', 'a', '--api-key-file', keyFile('b\n')], /--api-key or --api-key-file, not both/],
    [['-m', STORIES, '--api-key-file', keyFile('\n')], /holds no key/],
    [['-m', STORIES, '--alias', ''], /--alias must be 1 to 255 bytes/],
    [['--config', 'x.yaml', '--alias', 'a'], /--alias is for -m/],
  ];
  for (const [args, msg] of cases) {
    const r = spawnSync(BIN, ['serve', ...args], { encoding: 'utf8' });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, msg);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
  const missing = spawnSync(BIN, ['serve', '-m', STORIES, '--api-key-file', '/nonexistent/key'], { encoding: 'utf8' });
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /nonexistent/);
});

test('serve -m is the router over one in-process backend: its /metrics, the engine\'s own ponder object; a model that does not load exits 1', async () => {
  const srv = await startServer(['-m', STORIES, '--parallel', '1', '-c', '128']);
  try {
    const r = await postJSON(srv.base + '/completions', { prompt: 'Once', max_tokens: 2, temperature: 0 });
    assert.equal(r.status, 200);
    assert.equal(typeof r.json.ponder.flops, 'number', 'the engine\'s numbers, not nested');
    assert.equal(r.json.ponder.attempts, undefined, 'nothing was routed');
    const m = await (await fetch(srv.url + '/metrics')).text();
    assert.match(m, /^ponder_backend_up\{backend="stories260K\/0"\} 1$/m);
    assert.match(m, /^ponder_router_requests_total\{outcome="ok"\} 1$/m);
  } finally { assert.equal(await srv.stop(), 0); }
  const bad = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ponder-bad-')), 'bad.gguf');
  fs.writeFileSync(bad, 'GGUF not really');
  const r = spawnSync(BIN, ['serve', '-m', bad, '-c', '128', '--port', '0'], { encoding: 'utf8', timeout: 10000 });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /bad\.gguf/);
  assert.ok(!r.stderr.includes('listening'), r.stderr);
});
