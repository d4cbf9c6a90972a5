// Tool calls through the official openai client on a random-weight model (SmolLM2 vocabulary),
// once per call format: the model's own ChatML template (generic JSON, tools described in the
// system message) and, with --chat-template-file, the real Qwen 2.5 and Hermes 2 Pro (Hermes
// <tool_call>), Llama 3.1 (JSON with "parameters") and Mistral Nemo ([TOOL_CALLS]) templates
// from ../shared/reference/templates. With tool_choice "required" or a named function the
// call is grammar-constrained, so even random weights give calls whose arguments validate
// against the function's schema: whole and streamed (the client's stream helper assembles
// the delta.tool_calls chunks), n = 2, parallel_tool_calls false, a multi-turn history with
// the tool's result (runTools), tool_choice "none", and the 400s for what is not supported.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { startServer, SMOLLM, haveFile, postJSON } from './helpers.mjs';
import { validate } from './jsonschema.mjs';

const shared = process.env.PONDER_SHARED || process.env.PONDER_SHARED_DEFAULT || '../shared';
const TEMPLATES = path.join(shared, 'reference/templates/templates');
const FORMATS = [
  { name: 'generic (ChatML)', template: null },
  { name: 'hermes (Qwen 2.5)', template: 'Qwen-Qwen2.5-7B-Instruct.jinja' },
  { name: 'hermes (Hermes 2 Pro)', template: 'NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja' },
  { name: 'llama3 (Llama 3.1)', template: 'meta-llama-Llama-3.1-8B-Instruct.jinja', single: true },
  { name: 'mistral (Nemo)', template: 'mistralai-Mistral-Nemo-Instruct-2407.jinja' },
];
const WEATHER = {
  type: 'object',
  properties: {
    city: { type: 'string', minLength: 1, maxLength: 12 },
    unit: { enum: ['celsius', 'fahrenheit'] },
    days: { type: 'integer', minimum: 1, maximum: 7 },
  },
  required: ['city', 'unit'],
  additionalProperties: false,
};
const SEARCH = {
  type: 'object',
  properties: { query: { type: 'string', maxLength: 20 }, tags: { type: 'array', items: { type: 'string', maxLength: 6 }, maxItems: 2 } },
  required: ['query'],
  additionalProperties: false,
};
const TOOLS = [
  { type: 'function', function: { name: 'get_weather', description: 'Weather for a city', parameters: WEATHER } },
  { type: 'function', function: { name: 'search', description: 'Search the web', parameters: SEARCH } },
];
const SCHEMA_OF = { get_weather: WEATHER, search: SEARCH };
const MESSAGES = [{ role: 'user', content: 'What is the weather in Paris?' }];

const skip = !haveFile(SMOLLM) ? 'the SmolLM2-vocabulary synthetic model is missing'
  : !haveFile(path.join(TEMPLATES, FORMATS[1].template)) ? 'the reference chat templates are missing' : false;
const servers = [];

before(async () => {
  if (skip) return;
  for (const f of FORMATS) {
    const args = ['-m', SMOLLM, '--parallel', '2', '-c', '1536'];
    if (f.template) args.push('--chat-template-file', path.join(TEMPLATES, f.template));
    const srv = await startServer(args);
    servers.push({ ...f, srv, client: new OpenAI({ baseURL: srv.base, apiKey: 'unused', maxRetries: 0 }) });
  }
});
after(async () => {
  for (const s of servers) {
    const code = await s.srv.stop();
    assert.equal(code, 0, `${s.name}: clean exit on SIGTERM; its log ends:\n${s.srv.stderr().slice(-4000)}`);
  }
});

function checkCall(label, call, only) {
  assert.match(call.id, /^call_[A-Za-z0-9]{24}$/, `${label}: id ${call.id}`);
  assert.equal(call.type, 'function', label);
  assert.ok(call.function.name in SCHEMA_OF, `${label}: name ${call.function.name}`);
  if (only) assert.equal(call.function.name, only, label);
  assert.equal(typeof call.function.arguments, 'string', `${label}: arguments is a JSON string`);
  const args = JSON.parse(call.function.arguments);
  const schema = SCHEMA_OF[call.function.name];
  assert.equal(validate(schema, schema, args), null, `${label}: ${call.function.arguments}`);
  return args;
}

test('tool_choice required: every choice is a valid call (n = 2, sampled, several seeds)', { skip }, async () => {
  for (const s of servers) {
    for (const seed of [1, 2, 3]) {
      const r = await s.client.chat.completions.create({
        messages: MESSAGES, tools: TOOLS, tool_choice: 'required', n: 2, seed, temperature: 1, max_tokens: 200,
      });
      assert.equal(r.choices.length, 2);
      for (const c of r.choices) {
        const label = `${s.name} seed ${seed} choice ${c.index}`;
        assert.equal(c.finish_reason, 'tool_calls', `${label}: ${JSON.stringify(c.message)}`);
        assert.ok(c.message.tool_calls.length >= 1, label);
        if (s.single) assert.equal(c.message.tool_calls.length, 1, `${label}: Llama 3 templates take one call`);
        for (const call of c.message.tool_calls) checkCall(label, call);
        assert.ok(c.message.content === null || typeof c.message.content === 'string', label);
      }
    }
  }
});

test('a named function is the one called; parallel_tool_calls false gives exactly one call', { skip }, async () => {
  for (const s of servers) {
    const r = await s.client.chat.completions.create({
      messages: MESSAGES, tools: TOOLS, tool_choice: { type: 'function', function: { name: 'search' } },
      parallel_tool_calls: false, seed: 7, max_tokens: 200,
    });
    const c = r.choices[0];
    assert.equal(c.finish_reason, 'tool_calls', s.name);
    assert.equal(c.message.tool_calls.length, 1, s.name);
    checkCall(s.name, c.message.tool_calls[0], 'search');
  }
});

test('streamed: the client stream helper assembles delta.tool_calls into the same calls', { skip }, async () => {
  for (const s of servers) {
    const params = { messages: MESSAGES, tools: TOOLS, tool_choice: 'required', seed: 11, temperature: 0, max_tokens: 200 };
    const whole = await s.client.chat.completions.create(params);
    const stream = s.client.beta.chat.completions.stream({ ...params, stream: true });
    const deltas = [];
    stream.on('tool_calls.function.arguments.delta', (e) => deltas.push(e.arguments_delta));
    const final = await stream.finalChatCompletion();
    const a = whole.choices[0].message.tool_calls, b = final.choices[0].message.tool_calls;
    assert.equal(final.choices[0].finish_reason, 'tool_calls', s.name);
    assert.equal(b.length, a.length, s.name);
    for (let i = 0; i < a.length; i++) {
      checkCall(`${s.name} streamed`, b[i]);
      assert.equal(b[i].function.name, a[i].function.name, s.name);
      assert.equal(b[i].function.arguments, a[i].function.arguments, `${s.name}: greedy, same arguments`);
    }
    assert.equal(deltas.join(''), b.map((c) => c.function.arguments).join(''), s.name);
  }
});

test('multi-turn: runTools calls the function, and the history with its result renders', { skip }, async () => {
  for (const s of servers) {
    const seen = [];
    const runner = s.client.beta.chat.completions.runTools({
      messages: MESSAGES, max_tokens: 120, seed: 5,
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      tools: [{
        type: 'function',
        function: {
          name: 'get_weather', parameters: WEATHER, parse: JSON.parse,
          function: (args) => { seen.push(args); return { temperature: 21, unit: args.unit }; },
        },
      }],
    });
    await runner.done();
    assert.equal(seen.length, 1, s.name);
    assert.equal(validate(WEATHER, WEATHER, seen[0]), null, `${s.name}: ${JSON.stringify(seen[0])}`);
    const history = runner.messages; // user, assistant with tool_calls, tool result
    assert.equal(history.at(-1).role, 'tool', s.name);
    // the model's next step, with the call and its result in the history (arguments as a JSON
    // string, as clients send them): rendered by the template and answered
    for (const tool_choice of ['auto', 'required']) {
      const r = await s.client.chat.completions.create({
        messages: history, tools: TOOLS, tool_choice,
        max_tokens: 200, seed: 6,
      });
      const c = r.choices[0];
      if (tool_choice === 'required') for (const call of c.message.tool_calls) checkCall(`${s.name} turn 2`, call);
      else assert.ok(['stop', 'length', 'tool_calls'].includes(c.finish_reason), s.name);
    }
  }
});

test('tool_choice none: plain content, no calls', { skip }, async () => {
  const s = servers[1];
  const r = await s.client.chat.completions.create({ messages: MESSAGES, tools: TOOLS, tool_choice: 'none', max_tokens: 8, seed: 1 });
  assert.equal(r.choices[0].message.tool_calls, undefined);
  assert.equal(typeof r.choices[0].message.content, 'string');
  assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
});

test('unsupported tool fields and types are 400s naming them', { skip }, async () => {
  const url = servers[1].srv.base + '/chat/completions';
  const fn = { name: 'f', parameters: { type: 'object' } };
  const cases = [
    [{ tools: [{ type: 'retrieval' }] }, 'tools.[0].type'],
    [{ tools: [{ type: 'function', function: { ...fn, returns: {} } }] }, 'tools.[0].function.returns'],
    [{ tools: [{ type: 'function', function: { name: 'bad name!' } }] }, 'tools.[0].function.name'],
    [{ tools: [{ type: 'function', function: fn, cache_control: {} }] }, 'tools.[0].cache_control'],
    [{ tools: [{ type: 'function', function: fn }], tool_choice: 'sometimes' }, 'tool_choice'],
    [{ tools: [{ type: 'function', function: fn }], tool_choice: { type: 'function', function: { name: 'g' } } }, 'tool_choice'],
    [{ tool_choice: 'required' }, 'tool_choice'],
    [{ tools: [{ type: 'function', function: fn }], parallel_tool_calls: 'yes' }, 'parallel_tool_calls'],
    [{ functions: [fn] }, 'functions'],
    [{ tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { a: { not: {} } } } } }],
       tool_choice: 'required' }, 'tools'],
    [{ tools: [{ type: 'function', function: fn }], tool_choice: 'required', response_format: { type: 'json_object' } }, 'tool_choice'],
  ];
  for (const [extra, param] of cases) {
    const r = await postJSON(url, { messages: MESSAGES, max_tokens: 4, ...extra });
    assert.equal(r.status, 400, `${JSON.stringify(extra)}: ${r.body}`);
    assert.equal(r.json.error.param, param, `${JSON.stringify(extra)}: ${r.body}`);
  }
  const r = await postJSON(url, { messages: MESSAGES, max_tokens: 4, tool_choice: 'required',
    tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { a: { not: {} } } } } }] });
  assert.match(r.json.error.message, /'not'/, 'the unsupported keyword is named');
});

test('through the router (serve --config, a local backend): the same calls, whole and streamed', { skip }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ponder-tools-'));
  const cfg = path.join(dir, 'config.yaml');
  fs.writeFileSync(cfg, `model_list:\n  - model_name: syn\n    backends: [{local: ${path.resolve(SMOLLM)}}]\n`);
  const rt = await startServer(['--config', cfg, '-c', '1024']);
  try {
    const client = new OpenAI({ baseURL: rt.base, apiKey: 'unused', maxRetries: 0 });
    const params = { model: 'syn', messages: MESSAGES, tools: TOOLS, tool_choice: 'required', seed: 4, temperature: 0, max_tokens: 200 };
    const whole = await client.chat.completions.create(params);
    assert.equal(whole.choices[0].finish_reason, 'tool_calls');
    const direct = await servers[0].client.chat.completions.create({ ...params, model: undefined });
    assert.deepEqual(whole.choices[0].message.tool_calls.map((c) => c.function),
      direct.choices[0].message.tool_calls.map((c) => c.function), 'the router answers as serve -m does');
    const final = await client.beta.chat.completions.stream({ ...params, stream: true }).finalChatCompletion();
    for (const call of final.choices[0].message.tool_calls) checkCall('router streamed', call);
    assert.deepEqual(final.choices[0].message.tool_calls.map((c) => c.function),
      whole.choices[0].message.tool_calls.map((c) => c.function));
  } finally {
    assert.equal(await rt.stop(), 0);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
