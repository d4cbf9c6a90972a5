// `ponder pull`, `list`, `rm` and NAME:TAG resolution end to end against fakehub.mjs on
// loopback (HF_ENDPOINT), with real GGUF files from ../shared: the default and named
// quants, an interrupted download resumed with Range (in a second run, and by the retry
// loop in one run), a wrong checksum (nothing installed), 404, 401 without HF_TOKEN and
// success with it, a mirror without the tree API, a plain URL, a catalogue name with a
// file in a subfolder, and the progress bar on a terminal.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startHub, sha256 } from './fakehub.mjs';

const BIN = process.env.PONDER_BIN;
const shared = process.env.PONDER_SHARED || process.env.PONDER_SHARED_DEFAULT || '../shared';
const Q8 = path.join(shared, 'models/synthetic/syn-tiny-Q8_0.gguf');
const Q4 = path.join(shared, 'models/synthetic/syn-tiny-Q4_K_M.gguf');
const STORIES = path.join(shared, 'models/stories260K/stories260K.gguf');
const STORIES_SHA = '270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d';
const CUT = 800000;

let hub;
let store;

function run(args, env = {}) {
  return new Promise((resolve) => {
    const e = { ...process.env, PONDER_MODELS: store, HF_ENDPOINT: hub.url, ...env };
    if (!('HF_TOKEN' in env)) delete e.HF_TOKEN;
    const p = spawn(BIN, args, { env: e, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    p.on('close', (code) => resolve({ code, out, err }));
  });
}

const same = (a, b) => fs.readFileSync(a).equals(fs.readFileSync(b));
const repoFile = (...p) => path.join(store, 'hf.co', ...p);

before(async () => {
  assert.ok(BIN, 'PONDER_BIN is not set (run through ctest)');
  store = fs.mkdtempSync(path.join(os.tmpdir(), 'ponder-hub-'));
  hub = await startHub({
    cdnHost: 'localhost', // the resolve/ redirect leaves 127.0.0.1 for another host name, as the Hub's CDN
    repos: {
      'test/tiny-GGUF': { files: { 'syn-tiny-Q8_0.gguf': Q8, 'syn-tiny-Q4_K_M.gguf': Q4 } },
      'test/cut-GGUF': { files: { 'syn-tiny-Q8_0.gguf': Q8 }, cutAt: CUT },
      'test/retry-GGUF': { files: { 'syn-tiny-Q8_0.gguf': Q8 }, cutAt: CUT },
      'test/bad-GGUF': { files: { 'syn-tiny-Q8_0.gguf': Q8 }, badSha: true },
      'test/gated-GGUF': { files: { 'syn-tiny-Q8_0.gguf': Q8 }, gated: true },
      'test/mirror-GGUF': { files: { 'syn-tiny-Q4_K_M.gguf': Q4 }, noTree: true },
      'test/small-GGUF': { files: { 'syn-tiny-Q4_K_M.gguf': Q4 }, noLfs: true },
      'test/slow-GGUF': { files: { 'syn-tiny-Q8_0.gguf': Q8 }, chunkDelayMs: 60 },
      'test/paged-GGUF': { files: { 'a-Q8_0.gguf': Q8, 'b-Q2_K.gguf': Q8, 'c-Q4_K_M.gguf': Q4 }, pageSize: 1 },
      'ggml-org/models': { files: { 'tinyllamas/stories260K.gguf': STORIES, 'tinyllamas/other.gguf': Q4 } },
    },
    files: { 'plain-Q4_K_M.gguf': Q4 },
  });
});

after(async () => {
  await hub.close();
  fs.rmSync(store, { recursive: true, force: true });
});

test('pull a named quant, list it, run it by name, remove it', async () => {
  const r = await run(['pull', 'hf.co/test/tiny-GGUF:Q8_0']);
  assert.equal(r.code, 0, r.err);
  const file = repoFile('test', 'tiny-GGUF', 'syn-tiny-Q8_0.gguf');
  assert.ok(same(file, Q8));
  assert.match(r.out, /pulled hf\.co\/test\/tiny-GGUF:Q8_0 .* verified/);
  assert.equal(r.err, '', 'no progress bar when stderr is not a terminal');
  assert.ok(!fs.existsSync(file + '.partial'));

  const again = await run(['pull', 'hf.co/test/tiny-GGUF:q8_0', '--json']);
  assert.equal(again.code, 0, again.err);
  assert.equal(JSON.parse(again.out).already_present, true);

  const l = await run(['list', '--json']);
  assert.equal(l.code, 0, l.err);
  const entries = JSON.parse(l.out);
  const e = entries.find((x) => x.name === 'hf.co/test/tiny-GGUF:Q8_0');
  assert.ok(e, l.out);
  assert.equal(e.bytes, fs.statSync(Q8).size);
  assert.equal(e.quant, 'Q8_0');
  assert.equal(e.architecture, 'llama');
  assert.ok(e.params > 100000, `params ${e.params}`);
  const table = await run(['list']);
  assert.match(table.out, /NAME +ALIAS +SIZE +QUANT +ARCH +PARAMS/);
  assert.match(table.out, /hf\.co\/test\/tiny-GGUF:Q8_0 .* Q8_0 +llama/);

  for (const name of ['hf.co/test/tiny-GGUF:Q8_0', 'huggingface.co/test/tiny-GGUF:Q8_0']) {
    const g = await run(['run', '-m', name, '-p', 'hello', '-n', '4', '--seed', '1']);
    assert.equal(g.code, 0, g.err);
    const direct = await run(['run', '-m', file, '-p', 'hello', '-n', '4', '--seed', '1']);
    assert.equal(g.out, direct.out);
  }
  const missing = await run(['info', '-m', 'hf.co/test/tiny-GGUF:Q6_K']);
  assert.equal(missing.code, 1);
  assert.match(missing.err, /not in .*ponder pull hf\.co\/test\/tiny-GGUF:Q6_K/);

  const rm = await run(['rm', 'hf.co/test/tiny-GGUF:Q8_0']);
  assert.equal(rm.code, 0, rm.err);
  assert.ok(!fs.existsSync(file));
  assert.ok(!fs.existsSync(path.join(store, 'hf.co', 'test')), 'empty repository folders are pruned');
  const rm2 = await run(['rm', 'hf.co/test/tiny-GGUF:Q8_0']);
  assert.equal(rm2.code, 1);
});

test('without a quant the default is Q4_K_M', async () => {
  const r = await run(['pull', 'hf.co/test/tiny-GGUF', '--json']);
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  assert.equal(j.name, 'hf.co/test/tiny-GGUF:Q4_K_M');
  assert.equal(j.verified, true);
  assert.equal(j.sha256, sha256(fs.readFileSync(Q4)));
  assert.ok(same(j.path, Q4));
  const g = await run(['info', '-m', 'hf.co/test/tiny-GGUF', '--json']);
  assert.equal(g.code, 0, g.err);
  await run(['rm', 'hf.co/test/tiny-GGUF']);
});

test('an interrupted download keeps .partial and the next pull resumes it with Range', async () => {
  const first = await run(['pull', 'hf.co/test/cut-GGUF:Q8_0', '--retries', '0']);
  assert.equal(first.code, 1);
  assert.match(first.err, /interrupted at .* kept in .*\.partial.*again to resume/);
  const file = repoFile('test', 'cut-GGUF', 'syn-tiny-Q8_0.gguf');
  assert.ok(!fs.existsSync(file), 'nothing under the final name');
  assert.equal(fs.statSync(file + '.partial').size, CUT);
  const l = await run(['list', '--json']);
  assert.ok(JSON.parse(l.out).some((x) => x.partial && x.name === 'hf.co/test/cut-GGUF:Q8_0'));

  const before = hub.log.length;
  const second = await run(['pull', 'hf.co/test/cut-GGUF:Q8_0', '--json']);
  assert.equal(second.code, 0, second.err);
  const j = JSON.parse(second.out);
  assert.equal(j.resumed_from, CUT);
  assert.equal(j.downloaded, fs.statSync(Q8).size - CUT);
  assert.equal(j.verified, true);
  assert.ok(same(file, Q8));
  assert.ok(!fs.existsSync(file + '.partial'));
  const ranged = hub.log.slice(before).filter((x) => x.path.startsWith('/cdn/test/cut-GGUF/'));
  assert.deepEqual(ranged.map((x) => x.range), [`bytes=${CUT}-`]);
});

test('the retry loop resumes a cut transfer within one run', async () => {
  const r = await run(['pull', 'hf.co/test/retry-GGUF:Q8_0', '--json']);
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  assert.equal(j.attempts, 2);
  assert.equal(j.resumed_from, 0);
  assert.ok(same(j.path, Q8));
  const ranges = hub.log.filter((x) => x.path.startsWith('/cdn/test/retry-GGUF/')).map((x) => x.range);
  assert.deepEqual(ranges, [null, `bytes=${CUT}-`]);
});

test('a wrong checksum installs nothing and discards the download', async () => {
  const r = await run(['pull', 'hf.co/test/bad-GGUF:Q8_0']);
  assert.equal(r.code, 1);
  assert.match(r.err, /checksum mismatch: sha256 [0-9a-f]{64}, expected [0-9a-f]{64}; the download was discarded/);
  const file = repoFile('test', 'bad-GGUF', 'syn-tiny-Q8_0.gguf');
  assert.ok(!fs.existsSync(file));
  assert.ok(!fs.existsSync(file + '.partial'));
  const wrong = await run(['pull', `${hub.url}/files/plain-Q4_K_M.gguf`, '--sha256', '0'.repeat(64)]);
  assert.equal(wrong.code, 1);
  assert.match(wrong.err, /checksum mismatch/);
  assert.ok(!fs.existsSync(path.join(store, 'plain-Q4_K_M.gguf')));
});

test('404: no repository, no file, no matching quant', async () => {
  const r = await run(['pull', 'hf.co/test/absent-GGUF:Q8_0']);
  assert.equal(r.code, 1);
  assert.match(r.err, /404 Not Found: no repository test\/absent-GGUF/);
  const f = await run(['pull', 'hf.co/ggml-org/models/tinyllamas/absent.gguf']);
  assert.equal(f.code, 1);
  assert.match(f.err, /404 Not Found: no file tinyllamas\/absent\.gguf/);
  const q = await run(['pull', 'hf.co/test/tiny-GGUF:Q5_K_M']);
  assert.equal(q.code, 1);
  assert.match(q.err, /no GGUF file matching 'Q5_K_M' .* available: Q8_0, Q4_K_M|available: Q4_K_M, Q8_0/);
  const u = await run(['pull', `${hub.url}/files/absent.gguf`]);
  assert.equal(u.code, 1);
  assert.match(u.err, /404 Not Found/);
  assert.ok(!fs.existsSync(path.join(store, 'absent.gguf.partial')) || fs.statSync(path.join(store, 'absent.gguf.partial')).size === 0);
  fs.rmSync(path.join(store, 'absent.gguf.partial'), { force: true });
});

test('401 names HF_TOKEN; with the token the gated repository downloads', async () => {
  const r = await run(['pull', 'hf.co/test/gated-GGUF:Q8_0']);
  assert.equal(r.code, 1);
  assert.match(r.err, /401 Unauthorized.*set HF_TOKEN/);
  const wrong = await run(['pull', 'hf.co/test/gated-GGUF:Q8_0'], { HF_TOKEN: 'wrong' });
  assert.equal(wrong.code, 1);
  assert.match(wrong.err, /401 Unauthorized.*HF_TOKEN sent was refused/);
  const before = hub.log.length;
  const ok = await run(['pull', 'hf.co/test/gated-GGUF:Q8_0'], { HF_TOKEN: hub.token });
  assert.equal(ok.code, 0, ok.err);
  assert.ok(same(repoFile('test', 'gated-GGUF', 'syn-tiny-Q8_0.gguf'), Q8));
  const sent = hub.log.slice(before).filter((x) => x.path.startsWith('/api/') || x.path.includes('/resolve/'));
  assert.ok(sent.length >= 2 && sent.every((x) => x.auth === `Bearer ${hub.token}`));
  const cdn = hub.log.slice(before).filter((x) => x.path.startsWith('/cdn/'));
  assert.ok(cdn.length >= 1 && cdn.every((x) => x.auth === null && x.host.startsWith('localhost:')),
    'the token is not sent on to the CDN host: ' + JSON.stringify(cdn));
});

test('HF_ENDPOINT: a mirror without the tree API, verified by X-Linked-Etag', async () => {
  const before = hub.log.length;
  const r = await run(['pull', 'hf.co/test/mirror-GGUF:Q4_K_M', '--json']);
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  assert.equal(j.verified, true);
  assert.ok(same(j.path, Q4));
  const paths = hub.log.slice(before).map((x) => x.path);
  assert.ok(paths.includes('/api/models/test/mirror-GGUF/tree/main'));
  assert.ok(paths.includes('/api/models/test/mirror-GGUF'));
  const bad = await run(['pull', 'hf.co/test/mirror-GGUF'], { HF_ENDPOINT: 'ftp://example' });
  assert.equal(bad.code, 2);
  assert.match(bad.err, /HF_ENDPOINT 'ftp:\/\/example' is not an http\(s\):\/\/ URL/);
});

test('a listing in pages is followed to its end (Link: rel="next")', async () => {
  const before = hub.log.length;
  const r = await run(['pull', 'hf.co/test/paged-GGUF', '--json']);
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  assert.equal(j.name, 'hf.co/test/paged-GGUF:Q4_K_M', 'the default quant is on the third page');
  assert.equal(j.verified, true);
  const pages = hub.log.slice(before).filter((x) => x.path === '/api/models/test/paged-GGUF/tree/main');
  assert.deepEqual(pages.map((x) => new URLSearchParams(x.search).get('cursor')), [null, '1', '2', '3']);
});

test('two pulls of one file at once: the second says so and leaves the first alone', async () => {
  const first = run(['pull', 'hf.co/test/slow-GGUF:Q8_0']);
  const partial = repoFile('test', 'slow-GGUF', 'syn-tiny-Q8_0.gguf.partial');
  for (let i = 0; i < 200 && !fs.existsSync(partial); i++) await new Promise((r) => setTimeout(r, 10));
  const second = await run(['pull', 'hf.co/test/slow-GGUF:Q8_0']);
  assert.equal(second.code, 1);
  assert.match(second.err, /another ponder pull is downloading this file/);
  const done = await first;
  assert.equal(done.code, 0, done.err);
  assert.ok(same(repoFile('test', 'slow-GGUF', 'syn-tiny-Q8_0.gguf'), Q8));
});

test('a small non-LFS file is checked by its git blob id', async () => {
  const r = await run(['pull', 'hf.co/test/small-GGUF', '--json']);
  assert.equal(r.code, 0, r.err);
  assert.equal(JSON.parse(r.out).verified, true);
});

test('a plain URL, resolved afterwards by its file name', async () => {
  const r = await run(['pull', `${hub.url}/files/plain-Q4_K_M.gguf`, '--json']);
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  assert.equal(j.name, 'plain-Q4_K_M');
  assert.equal(j.verified, true, 'the ETag is a sha256');
  assert.equal(j.path, path.join(store, 'plain-Q4_K_M.gguf'));
  const g = await run(['info', '-m', 'plain-Q4_K_M', '--json']);
  assert.equal(g.code, 0, g.err);
  const notgguf = await run(['pull', `${hub.url}/files/readme.txt`]);
  assert.equal(notgguf.code, 2);
  assert.match(notgguf.err, /must name a \.gguf file/);
});

test('a catalogue name (a file in a subfolder of ggml-org/models) and its alias', async () => {
  const r = await run(['pull', 'stories:260k', '--json']);
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  assert.equal(j.sha256, STORIES_SHA);
  assert.equal(j.verified, true);
  assert.equal(j.path, repoFile('ggml-org', 'models', 'stories260K.gguf'));
  const l = JSON.parse((await run(['list', '--json'])).out);
  assert.ok(l.some((x) => x.alias === 'stories:260k' && x.quant === 'F32'), JSON.stringify(l));
  const g = await run(['run', '-m', 'stories:260k', '-p', 'Once upon a time', '-n', '8', '--seed', '3']);
  const d = await run(['run', '-m', STORIES, '-p', 'Once upon a time', '-n', '8', '--seed', '3']);
  assert.equal(g.code, 0, g.err);
  assert.equal(g.out, d.out);
  const unknown = await run(['pull', 'nosuchmodel:7b']);
  assert.equal(unknown.code, 1);
  assert.match(unknown.err, /unknown model 'nosuchmodel:7b': not in the catalogue \(stories:260k, smollm2:135m/);
  const rm = await run(['rm', 'stories:260k']);
  assert.equal(rm.code, 0, rm.err);
});

test('on a terminal a progress bar shows percent, speed and ETA', { skip: !fs.existsSync('/usr/bin/script') && 'no script(1)' }, async () => {
  const cmd = `${BIN} pull hf.co/test/tiny-GGUF:Q8_0`;
  const r = await run(['--version']); // warm-up: the binary exists
  assert.equal(r.code, 0);
  const res = await new Promise((resolve) => {
    const env = { ...process.env, PONDER_MODELS: store, HF_ENDPOINT: hub.url };
    const p = spawn('script', ['-qec', cmd, '/dev/null'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.on('close', (code) => resolve({ code, out }));
  });
  assert.equal(res.code, 0, res.out);
  assert.match(res.out, /100% \[=+\] .*MiB \/ .*MiB .*\/s {2}ETA /);
  await run(['rm', 'hf.co/test/tiny-GGUF:Q8_0']);
});
