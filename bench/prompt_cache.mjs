#!/usr/bin/env node
// prompt_cache.mjs — what the prompt cache buys a web chat: a 10-turn conversation (system
// message, user turns of a few sentences, greedy answers of --max-tokens fed back) sent to
// two `ponder serve` instances of the same model, one with the prompt cache (the default)
// and one with --no-cache-prompt; time to the first content chunk (TTFT, streaming) per
// turn. The two are interleaved request by request (the order alternating) so a busy
// machine hits both alike; each conversation is repeated --reps times with its own system
// message (no cross-conversation hits) and the median per turn is reported.
// A benchmark, not a test: it asserts nothing.
//
//   node bench/prompt_cache.mjs --bin build/release/ponder -m MODEL.gguf [--reps 3] [--max-tokens 32] [-t 1] [--json]
import { spawn } from 'node:child_process';
import http from 'node:http';

const a = { bin: 'build/release/ponder', model: null, reps: 3, maxTokens: 32, threads: 1, json: false };
const v = process.argv.slice(2);
for (let i = 0; i < v.length; i++) {
  const k = v[i], next = () => v[++i];
  if (k === '--bin') a.bin = next();
  else if (k === '-m') a.model = next();
  else if (k === '--reps') a.reps = Number(next());
  else if (k === '--max-tokens') a.maxTokens = Number(next());
  else if (k === '-t') a.threads = Number(next());
  else if (k === '--json') a.json = true;
  else { console.error(`prompt_cache: unknown option ${k}`); process.exit(2); }
}
if (!a.model) { console.error('prompt_cache: -m MODEL is required'); process.exit(2); }

const USER = [
  'Hi! I am planning a weekend trip to the mountains with two friends. We like hiking but none of us is very experienced. What should we think about first?',
  'Good points. The forecast says rain on Saturday afternoon and sun on Sunday. How would you split the two days between a long hike and something easier?',
  'We found a trail that is 14 kilometres with 900 metres of climbing. Is that too much for beginners, and how long would it take us?',
  'What should each of us carry in a day pack for that hike? Please keep it to the essentials, we do not want heavy bags.',
  'One friend has new boots she has never worn. Is that a problem? What can she do before the trip to avoid blisters?',
  'We will stay in a small cabin without a kitchen, only a kettle. What easy breakfasts and dinners could we bring that need just hot water?',
  'If the rain on Saturday turns into a thunderstorm while we are on the trail, what is the safest thing to do?',
  'How do we tell whether a stream is safe to drink from, or should we just carry all our water?',
  'Can you suggest a short and fun activity for Saturday evening in the cabin, something that does not need electricity?',
  'Thanks a lot. Could you summarise the whole plan in a few lines so I can send it to my friends?',
];

function serve(args) {
  return new Promise((resolve, reject) => {
    const p = spawn(a.bin, ['serve', '--port', '0', '-t', String(a.threads), '--parallel', '1', '-c', '4096', ...args],
      { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => {
      err += d;
      const m = err.match(/listening on (http:\/\/\S+)/);
      if (m) resolve({ url: m[1], proc: p });
    });
    p.on('exit', (c) => reject(new Error(`server exited ${c}: ${err}`)));
  });
}

// One streamed chat request: TTFT (ms to the first content), the answer, the usage.
function chat(url, messages) {
  const body = JSON.stringify({ messages, max_tokens: a.maxTokens, temperature: 0, stream: true,
    stream_options: { include_usage: true } });
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let ttft = null, buf = '', text = '', usage = null, ponder = null;
    const req = http.request(url + '/v1/chat/completions', { method: 'POST', agent: false,
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } }, (res) => {
      res.on('data', (d) => {
        buf += d;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const ev = buf.slice(0, i);
          buf = buf.slice(i + 2);
          if (!ev.startsWith('data: ') || ev === 'data: [DONE]') continue;
          const j = JSON.parse(ev.slice(6));
          const c = j.choices?.[0]?.delta?.content;
          if (c) { if (ttft === null) ttft = performance.now() - t0; text += c; }
          if (j.usage) usage = j.usage;
          if (j.ponder) ponder = j.ponder;
        }
      });
      res.on('end', () => resolve({ ttft: ttft ?? performance.now() - t0, text, usage, ponder }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const median = (xs) => { const s = [...xs].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };

const cached = await serve(['-m', a.model, '--chatml']);
const plain = await serve(['-m', a.model, '--chatml', '--no-cache-prompt']);
const turns = USER.map(() => ({ on: [], off: [], prompt: 0, hit: 0, same: true }));
try {
  await chat(cached.url, [{ role: 'user', content: 'warm-up' }]);
  await chat(plain.url, [{ role: 'user', content: 'warm-up' }]);
  for (let rep = 0; rep < a.reps; rep++) {
    const mOn = [{ role: 'system', content: `You are a helpful travel assistant (session ${rep + 1}).` }];
    const mOff = [...mOn];
    for (let t = 0; t < USER.length; t++) {
      mOn.push({ role: 'user', content: USER[t] });
      mOff.push({ role: 'user', content: USER[t] });
      const first = (rep + t) % 2 === 0;
      const r1 = await chat(first ? cached.url : plain.url, first ? mOn : mOff);
      const r2 = await chat(first ? plain.url : cached.url, first ? mOff : mOn);
      const on = first ? r1 : r2, off = first ? r2 : r1;
      turns[t].on.push(on.ttft);
      turns[t].off.push(off.ttft);
      turns[t].prompt = on.usage.prompt_tokens;
      turns[t].hit = on.usage.prompt_tokens_details.cached_tokens;
      turns[t].same &&= on.text === off.text;
      mOn.push({ role: 'assistant', content: on.text });
      mOff.push({ role: 'assistant', content: off.text });
    }
  }
} finally {
  cached.proc.kill('SIGTERM');
  plain.proc.kill('SIGTERM');
}

const rows = turns.map((t, i) => ({ turn: i + 1, prompt_tokens: t.prompt, cached_tokens: t.hit,
  ttft_ms_cache: median(t.on), ttft_ms_no_cache: median(t.off), same_answer: t.same }));
if (a.json) {
  console.log(JSON.stringify({ model: a.model, reps: a.reps, max_tokens: a.maxTokens, threads: a.threads, turns: rows }));
} else {
  console.log(`${a.model}: median TTFT of ${a.reps} conversations, ${a.threads} thread(s), answers of ${a.maxTokens} tokens`);
  console.log('| turn | prompt tokens | cached | TTFT cache (ms) | TTFT no cache (ms) | speed-up | same answer |');
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: | :---: |');
  for (const r of rows)
    console.log(`| ${r.turn} | ${r.prompt_tokens} | ${r.cached_tokens} | ${r.ttft_ms_cache.toFixed(1)} | ` +
      `${r.ttft_ms_no_cache.toFixed(1)} | ${(r.ttft_ms_no_cache / r.ttft_ms_cache).toFixed(2)}× | ${r.same_answer ? 'yes' : 'NO'} |`);
  const last = rows[rows.length - 1], first = rows[0];
  console.log(`turn ${last.turn} / turn 1 TTFT: ${(last.ttft_ms_cache / first.ttft_ms_cache).toFixed(2)}× with the cache, ` +
    `${(last.ttft_ms_no_cache / first.ttft_ms_no_cache).toFixed(2)}× without`);
}
