// Crash-safe files (label "files"): each writer — `ponder quantize`, `ponder train`
// checkpoints (model + .optim), `ponder distill`'s output, `ponder pull` — is killed with
// SIGKILL at random moments over several runs, with a previous version of the output in
// place. What is left under the output's name must be the previous file byte for byte or
// a complete new one (byte-identical to an unkilled run where the writer is deterministic,
// else a GGUF the reader accepts whole), never a torn one, and never nothing when there
// was a file before. Outcome counts are printed (the closing note's numbers).
// PONDER_CRASH_RUNS (default 6) sets the runs per writer; the seed is printed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startHub } from '../hub/fakehub.mjs';

const BIN = process.env.PONDER_BIN;
const shared = process.env.PONDER_SHARED || process.env.PONDER_SHARED_DEFAULT || '../shared';
const REPO = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const F32 = path.join(shared, 'models/synthetic/syn-tiny-phi3-F32.gguf');
const Q8 = path.join(shared, 'models/synthetic/syn-tiny-Q8_0.gguf');
const STORIES = path.join(shared, 'models/stories260K/stories260K.gguf');
const TEACHER = path.join(REPO, 'models/arith-s1.gguf');
const RUNS = Number(process.env.PONDER_CRASH_RUNS || 6);
let seed = Number(process.env.PONDER_CRASH_SEED || (Date.now() % 100000));
const counts = {};

let dir;

// A small LCG so a failing run can be replayed with PONDER_CRASH_SEED.
function rand() {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648;
}

function run(args, { killAfterMs, env = {} } = {}) {
  return new Promise((resolve) => {
    const p = spawn(BIN, args, { cwd: dir, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    let timer;
    if (killAfterMs !== undefined) timer = setTimeout(() => p.kill('SIGKILL'), killAfterMs);
    const t0 = Date.now();
    p.on('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, out, err, ms: Date.now() - t0 }); });
  });
}

// A GGUF the reader accepts whole (metadata and every tensor's bytes inside the file).
async function loadsWhole(file) {
  const r = await run(['info', '--json', file]);
  try {
    return JSON.parse(r.out).gguf_version === 3;
  } catch {
    return false;
  }
}

// Classifies what is at `file` after a kill: 'previous', 'new', or throws.
async function check(writer, file, prev, ref) {
  assert.ok(fs.existsSync(file), `${writer}: the previous file vanished`);
  const bytes = fs.readFileSync(file);
  let outcome;
  if (prev && bytes.equals(prev)) outcome = 'previous';
  else if (ref) {
    assert.ok(bytes.equals(ref), `${writer}: ${file} is neither the previous file nor the complete new one (${bytes.length} bytes)`);
    outcome = 'new';
  } else {
    assert.ok(await loadsWhole(file), `${writer}: ${file} is torn (${bytes.length} bytes)`);
    outcome = 'new';
  }
  counts[writer] ??= { previous: 0, new: 0, killed_while_running: 0, tmp_left: 0 };
  counts[writer][outcome]++;
  return outcome;
}

// 1 if a killed writer left temporary files beside its output (removed here), else 0.
function tmpLeft(d, base) {
  const left = fs.readdirSync(d).filter((f) => f.startsWith(base + '.tmp'));
  for (const f of left) fs.rmSync(path.join(d, f));
  return left.length ? 1 : 0;
}

before(() => {
  assert.ok(BIN, 'PONDER_BIN is not set (run through ctest)');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ponder-crash-'));
  console.log(`# crash test seed ${seed}, ${RUNS} runs per writer`);
});

after(() => {
  console.log('# crash-safety outcomes: ' + JSON.stringify(counts));
  fs.rmSync(dir, { recursive: true, force: true });
});

test('quantize killed at random moments leaves the previous output or the complete new one', async () => {
  const out = path.join(dir, 'q.gguf');
  const ref = await run(['quantize', F32, 'ref.gguf', 'Q8_0']);
  assert.equal(ref.code, 0, ref.err);
  const refBytes = fs.readFileSync(path.join(dir, 'ref.gguf'));
  const prev = fs.readFileSync(Q8); // a different, valid GGUF as the previous version
  for (let i = 0; i < RUNS; i++) {
    fs.writeFileSync(out, prev);
    const r = await run(['quantize', F32, 'q.gguf', 'Q8_0'], { killAfterMs: Math.floor(rand() * ref.ms * 1.2) });
    await check('quantize', out, prev, refBytes);
    if (r.signal === 'SIGKILL') counts.quantize.killed_while_running++;
    counts.quantize.tmp_left += tmpLeft(dir, 'q.gguf');
  }
});

test('train checkpoints killed at random moments always load', async () => {
  const data = await run(['data', 'arith', '--difficulty', '1', '--count', '8', '--seed', '4', '--split', 'test']);
  fs.writeFileSync(path.join(dir, 'held.jsonl'), data.out);
  const args = (out, steps) => ['train', '--data', 'held.jsonl', '-o', out, '--vocab-from', STORIES, '--dim', '32', '--layers', '1',
    '--heads', '2', '--kv-heads', '1', '--ff', '64', '--ctx', '192', '--steps', String(steps), '--batch', '2', '--seed', '5',
    '--save-every', '1', '--log-every', '1000'];
  const full = await run(args('prev.gguf', 2));
  assert.equal(full.code, 0, full.err);
  const prev = fs.readFileSync(path.join(dir, 'prev.gguf'));
  const prevOptim = fs.readFileSync(path.join(dir, 'prev.gguf.optim'));
  const timed = await run(args('timed.gguf', 20));
  assert.equal(timed.code, 0, timed.err);
  for (let i = 0; i < RUNS; i++) {
    fs.writeFileSync(path.join(dir, 'ck.gguf'), prev);
    fs.writeFileSync(path.join(dir, 'ck.gguf.optim'), prevOptim);
    const r = await run(args('ck.gguf', 20), { killAfterMs: Math.floor(rand() * timed.ms) });
    await check('train', path.join(dir, 'ck.gguf'), prev, null);
    await check('train.optim', path.join(dir, 'ck.gguf.optim'), prevOptim, null);
    if (r.signal === 'SIGKILL') counts.train.killed_while_running++;
    counts.train.tmp_left += tmpLeft(dir, 'ck.gguf');
    // Resuming from what is left either works or says the pair is from two steps.
    const res = await run([...args('ck.gguf', 21), '--resume', 'ck.gguf']);
    assert.ok(res.code === 0 || /a save was interrupted/.test(res.err), `resume: ${res.code} ${res.signal} ${res.err}`);
  }
});

test('a model and optimizer sidecar from different steps are refused on resume', async () => {
  const args = (steps) => ['train', '--data', 'held.jsonl', '-o', 'pair.gguf', '--vocab-from', STORIES, '--dim', '32',
    '--layers', '1', '--heads', '2', '--kv-heads', '1', '--ff', '64', '--ctx', '192', '--steps', String(steps), '--batch',
    '2', '--seed', '5', '--save-every', '0'];
  assert.equal((await run(args(2))).code, 0);
  const oldOptim = fs.readFileSync(path.join(dir, 'pair.gguf.optim'));
  assert.equal((await run(args(3))).code, 0);
  fs.writeFileSync(path.join(dir, 'pair.gguf.optim'), oldOptim);
  const r = await run([...args(4), '--resume', 'pair.gguf']);
  assert.equal(r.code, 1);
  assert.match(r.err, /model is from step 3 but .*pair\.gguf\.optim is from step 2 \(a save was interrupted\)/);
});

test('distill killed at random moments leaves the previous output or a whole new one', async () => {
  const q = await run(['data', 'arith', '--difficulty', '2', '--count', '6', '--seed', '3']);
  fs.writeFileSync(path.join(dir, 'q.jsonl'), q.out);
  const args = ['distill', '--teacher', TEACHER, '--student', 'prev.gguf', '--data', 'q.jsonl', '--eval-data', 'held.jsonl',
    '-o', 'd.gguf', '--strategy', 'sc:4', '--steps', '3', '--batch', '2', '-n', '64', '--keep-chains', 'chains.jsonl'];
  const full = await run(args);
  assert.equal(full.code, 0, full.err);
  const prev = fs.readFileSync(path.join(dir, 'prev.gguf'));
  const prevChains = Buffer.from('{"previous": true}\n');
  for (let i = 0; i < RUNS; i++) {
    fs.writeFileSync(path.join(dir, 'd.gguf'), prev);
    fs.writeFileSync(path.join(dir, 'chains.jsonl'), prevChains);
    const r = await run(args, { killAfterMs: Math.floor(rand() * full.ms * 1.2) });
    await check('distill', path.join(dir, 'd.gguf'), prev, null);
    const chains = fs.readFileSync(path.join(dir, 'chains.jsonl'));
    assert.ok(chains.equals(prevChains) || chains.toString().trim().split('\n').every((l) => JSON.parse(l)),
      'distill --keep-chains: torn');
    if (r.signal === 'SIGKILL') counts.distill.killed_while_running++;
    counts.distill.tmp_left += tmpLeft(dir, 'd.gguf');
  }
});

test('pull killed at random moments installs nothing or the whole verified file, then resumes', async () => {
  const hub = await startHub({ repos: { 'test/slow-GGUF': { files: { 'syn-tiny-Q8_0.gguf': Q8 }, chunkDelayMs: 8 } } });
  const store = path.join(dir, 'store');
  const env = { PONDER_MODELS: store, HF_ENDPOINT: hub.url };
  const file = path.join(store, 'hf.co/test/slow-GGUF/syn-tiny-Q8_0.gguf');
  const src = fs.readFileSync(Q8);
  try {
    const timed = await run(['pull', 'hf.co/test/slow-GGUF:Q8_0'], { env });
    assert.equal(timed.code, 0, timed.err);
    for (let i = 0; i < RUNS; i++) {
      fs.rmSync(store, { recursive: true, force: true });
      const r = await run(['pull', 'hf.co/test/slow-GGUF:Q8_0'], { env, killAfterMs: Math.floor(rand() * timed.ms * 1.2) });
      counts.pull ??= { none: 0, new: 0, killed_while_running: 0, partial_left: 0 };
      if (r.signal === 'SIGKILL') counts.pull.killed_while_running++;
      if (fs.existsSync(file)) {
        assert.ok(fs.readFileSync(file).equals(src), 'pull: a file under the final name that is not the whole file');
        counts.pull.new++;
      } else {
        counts.pull.none++;
      }
      if (fs.existsSync(file + '.partial')) counts.pull.partial_left++;
      const again = await run(['pull', 'hf.co/test/slow-GGUF:Q8_0'], { env });
      assert.equal(again.code, 0, again.err);
      assert.ok(fs.readFileSync(file).equals(src));
      assert.ok(!fs.existsSync(file + '.partial'));
    }
  } finally {
    await hub.close();
  }
});
