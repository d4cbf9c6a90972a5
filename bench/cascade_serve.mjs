// The cascade measured through the serving path: every arith item of a JSONL file sent as a
// client request for a cascade route of a running `ponder serve --config`, with the body
// `ponder calibrate` sends for it (the question and a newline, max_tokens, its stops, seed
// S + i * 1024, answer kind number). Prints accuracy, FLOPs / dollars / wall time per item
// (the ponder object's totals) and how many requests each stage answered, so the offline
// numbers of `ponder calibrate` can be checked against real requests.
//
//   node bench/cascade_serve.mjs http://127.0.0.1:8080 auto test.jsonl [--seed 42] [-n 128] [--json]
import http from 'node:http';
import fs from 'node:fs';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args.splice(i, 2)[1] : dflt;
};
const seed = Number(opt('--seed', 42));
const maxTokens = Number(opt('-n', 128));
const asJson = args.includes('--json') && args.splice(args.indexOf('--json'), 1);
const [base, route, file] = args;
if (!base || !route || !file) {
  console.error('usage: node bench/cascade_serve.mjs URL ROUTE FILE.jsonl [--seed S] [-n N] [--json]');
  process.exit(2);
}

function post(url, obj) {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify(obj);
    const req = http.request(url, { method: 'POST', agent: false, headers: { 'Content-Type': 'application/json' } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, json: JSON.parse(Buffer.concat(chunks).toString()) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

const items = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
let correct = 0, flops = 0, cost = 0, ms = 0;
const byStage = {};
for (let i = 0; i < items.length; i++) {
  const it = items[i];
  const r = await post(`${base}/v1/completions`, {
    model: route, prompt: it.question + '\n', max_tokens: maxTokens, stop: ['\nQuestion:', '\n\n\n'],
    seed: seed + i * 1024, ponder: { answer: 'number' },
  });
  if (r.status !== 200) throw new Error(`item ${i}: HTTP ${r.status}: ${JSON.stringify(r.json.error)}`);
  const p = r.json.ponder;
  const answer = p.stages[p.stage - 1].answer;
  if (answer !== null && Math.abs(Number(answer) - Number(it.answer)) < 1e-6) correct++;
  flops += p.total.flops;
  cost += p.total.cost_usd;
  ms += p.total.wall_ms;
  byStage[p.stage] = (byStage[p.stage] ?? 0) + 1;
}
const n = items.length;
const out = { route, n, accuracy: correct / n, flops_per_item: flops / n, cost_usd_per_item: cost / n, wall_ms_per_item: ms / n, answered_by_stage: byStage };
if (asJson) console.log(JSON.stringify(out));
else console.log(`${route} on ${n} items: accuracy ${(correct / n).toFixed(3)}, ${(flops / n).toExponential(3)} FLOPs/item, ` +
  `$${(cost / n).toPrecision(3)}/item, ${(ms / n).toFixed(1)} ms/item; answered by stage: ${JSON.stringify(byStage)}`);
