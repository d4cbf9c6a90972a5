// The chat page: talks to /v1/chat/completions with stream: true, reading the SSE stream
// with fetch (EventSource cannot POST). Answers are markdown, rendered by the vendored
// marked, sanitised by DOMPurify (model output is untrusted) and highlighted by Prism.
// Every model and route of /v1/models can be picked (so `auto` cascades too), with a
// thinking strategy sent as the request's "ponder" object; each answer carries a cost
// line in words. Conversations live in the browser's localStorage.
'use strict';
const $ = (id) => document.getElementById(id);
const STORE = 'ponder.chats.v1';
const CURRENT = 'ponder.current.v1';
const SETTINGS = 'ponder.settings.v1';
let controller = null;
let chats = loadChats();
let current = localStorage.getItem(CURRENT);

// ---- storage ---------------------------------------------------------------------------

function loadChats() {
  try {
    const c = JSON.parse(localStorage.getItem(STORE) || '[]');
    return Array.isArray(c) ? c.filter((x) => x && Array.isArray(x.messages)) : [];
  } catch { return []; }
}
function saveChats() {
  try {
    localStorage.setItem(STORE, JSON.stringify(chats));
    if (current) localStorage.setItem(CURRENT, current);
  } catch { /* storage full or disabled: the page still works, unsaved */ }
}
function chat() { return chats.find((c) => c.id === current) || null; }
function newChat() {
  const c = { id: 'c' + Date.now().toString(36) + Math.random().toString(36).slice(2, 6), title: 'New chat', messages: [], updated: Date.now() };
  chats.unshift(c);
  current = c.id;
  return c;
}
const SETTING_IDS = ['temperature', 'top_p', 'max_tokens', 'seed', 'system', 'strategy'];
function saveSettings() {
  const s = {};
  for (const id of SETTING_IDS) s[id] = $(id).value;
  s.model = $('model').value;
  try { localStorage.setItem(SETTINGS, JSON.stringify(s)); } catch { /* unsaved */ }
}
function restoreSettings() {
  let s = {};
  try { s = JSON.parse(localStorage.getItem(SETTINGS) || '{}') || {}; } catch { /* defaults */ }
  for (const id of SETTING_IDS) if (typeof s[id] === 'string') $(id).value = s[id];
  return s;
}

// ---- formatting ------------------------------------------------------------------------

function si(x, unit) {
  if (!Number.isFinite(x)) return '–';
  const steps = [[1e15, 'P'], [1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'k']];
  for (const [v, p] of steps) if (Math.abs(x) >= v) return `${(x / v).toPrecision(3)} ${p}${unit}`;
  return `${Math.round(x)} ${unit}`;
}
function ms(x) {
  if (!Number.isFinite(x)) return '–';
  return x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${x < 10 ? x.toFixed(1) : Math.round(x)} ms`;
}
function usd(x) { return x >= 0.01 ? `$${x.toFixed(2)}` : `$${x.toPrecision(2)}`; }
function plural(n, word) { return `${n} ${word}${n === 1 ? '' : 's'}`; }
function pct(x) { return `${Math.round(x * 100)} %`; }

// The answer's cost in words, from usage and the ponder object (plain, strategy or cascade).
function describe(usage, p, clientSecs) {
  const parts = [];
  if (usage) parts.push(`${plural(usage.completion_tokens, 'token')} out, ${usage.prompt_tokens} in`);
  if (!p) return parts.join(' · ');
  // the router nests the backend's own object under "upstream"; a cascade has "total"
  const up = p.upstream || {};
  const total = p.total || (p.upstream ? { ...up, cost_usd: p.cost_usd } : p);
  if (Number.isFinite(total.flops)) parts.push(si(total.flops, 'FLOP'));
  if (Number.isFinite(total.wall_ms)) parts.push(ms(total.wall_ms));
  const tps = Number.isFinite(p.tokens_per_s) ? p.tokens_per_s : up.tokens_per_s;
  if (Number.isFinite(tps)) parts.push(`${tps.toFixed(0)} tokens/s`);
  else if (usage && clientSecs > 0.05) parts.push(`${(usage.completion_tokens / clientSecs).toFixed(0)} tokens/s`);
  if (total.cost_usd > 0) parts.push(usd(total.cost_usd));
  if (p.cascade) {
    const first = p.stages && p.stages[0];
    let s = `answered by stage ${p.stage} (${p.model})`;
    s += p.escalated ? `, escalated${first && first.reason ? ' because ' + first.reason : ''}` : ', not escalated';
    parts.push(s);
  } else if (p.backend) {
    parts.push(`by ${p.backend}`);
  }
  const th = p.strategy ? p : up;
  if (th.strategy) {
    let s = `${th.strategy}`;
    if (th.samples) s += `, ${th.samples} chains`;
    if (Number.isFinite(th.agreement)) s += `, agreement ${pct(th.agreement)}`;
    parts.push(s);
  }
  const dr = p.draft_tokens ? p : up;
  if (dr.draft_tokens) parts.push(`draft accepted ${dr.draft_accepted}/${dr.draft_tokens}`);
  return parts.join(' · ');
}

// ---- rendering -------------------------------------------------------------------------

function renderMarkdown(el, text) {
  if (window.marked && window.DOMPurify) {
    el.innerHTML = DOMPurify.sanitize(marked.parse(text, { gfm: true, breaks: true }));
    if (window.Prism) Prism.highlightAllUnder(el);
  } else {
    el.textContent = text;
  }
}

function bubble(m) {
  const d = document.createElement('div');
  d.className = 'msg ' + m.role;
  const body = document.createElement('div');
  body.className = 'body';
  d.appendChild(body);
  if (m.role === 'assistant') renderMarkdown(body, m.content); else body.textContent = m.content;
  if (m.meta) {
    const meta = document.createElement('div');
    meta.className = 'meta';
    meta.textContent = m.meta;
    d.appendChild(meta);
  }
  if (m.error) d.classList.add('error');
  $('log').appendChild(d);
  $('log').scrollTop = $('log').scrollHeight;
  return d;
}

function renderChat() {
  $('log').textContent = '';
  const c = chat();
  if (c) for (const m of c.messages) bubble(m).classList.add('done');
  renderList();
}

function renderList() {
  const ul = $('chat_list');
  ul.textContent = '';
  for (const c of chats) {
    const li = document.createElement('li');
    if (c.id === current) li.className = 'current';
    const a = document.createElement('button');
    a.type = 'button';
    a.className = 'open';
    a.textContent = c.title;
    a.title = new Date(c.updated).toLocaleString();
    a.addEventListener('click', () => { if (controller) return; current = c.id; saveChats(); renderChat(); });
    const x = document.createElement('button');
    x.type = 'button';
    x.className = 'delete';
    x.textContent = '×';
    x.setAttribute('aria-label', 'delete ' + c.title);
    x.addEventListener('click', () => {
      if (controller) return;
      chats = chats.filter((o) => o.id !== c.id);
      if (current === c.id) current = chats[0] ? chats[0].id : null;
      saveChats();
      renderChat();
    });
    li.append(a, x);
    ul.appendChild(li);
  }
}

// ---- server ----------------------------------------------------------------------------

function authHeaders() {
  const k = $('api_key').value.trim();
  return k ? { Authorization: 'Bearer ' + k } : {};
}

async function loadModels(preferred) {
  const sel = $('model');
  try {
    const r = await fetch('/v1/models', { headers: authHeaders() });
    const j = await r.json();
    const ids = Array.isArray(j.data) ? j.data.map((m) => m.id) : [];
    sel.textContent = '';
    for (const id of ids) {
      const o = document.createElement('option');
      o.value = o.textContent = id;
      sel.appendChild(o);
    }
    if (preferred && ids.includes(preferred)) sel.value = preferred;
    $('model_note').textContent = ids.length ? '' : (j.error ? j.error.message : 'no models');
  } catch (e) { $('model_note').textContent = String(e); }
}

function params() {
  const p = {};
  const num = (id) => { const v = $(id).value.trim(); return v === '' ? null : Number(v); };
  for (const k of ['temperature', 'top_p', 'max_tokens', 'seed']) { const v = num(k); if (v !== null && !Number.isNaN(v)) p[k] = v; }
  const s = $('strategy').value;
  if (s) {
    const [name, n] = s.split(':');
    p.ponder = { strategy: name };
    if (n) p.ponder.samples = Number(n);
  }
  return p;
}

// Reads an SSE body, calling onEvent(obj) for every data event but [DONE].
async function readSSE(body, onEvent) {
  const reader = body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const event = buf.slice(0, i);
      buf = buf.slice(i + 2);
      for (const line of event.split('\n')) {
        if (!line.startsWith('data: ')) continue; // ": keep-alive" comments
        const data = line.slice(6);
        if (data !== '[DONE]') onEvent(JSON.parse(data));
      }
    }
  }
}

async function send(text) {
  const c = chat() || newChat();
  if (!c.messages.length) c.title = text.length > 40 ? text.slice(0, 40) + '…' : text;
  c.messages.push({ role: 'user', content: text });
  c.updated = Date.now();
  chats = [c, ...chats.filter((o) => o !== c)];
  saveChats();
  renderList();
  bubble({ role: 'user', content: text }).classList.add('done');
  const out = bubble({ role: 'assistant', content: '' });
  out.classList.add('streaming');
  const outBody = out.querySelector('.body');
  const messages = [];
  const sys = $('system').value.trim();
  if (sys) messages.push({ role: 'system', content: sys });
  for (const m of c.messages) if (!m.error) messages.push({ role: m.role, content: m.content });
  const body = { messages, stream: true, stream_options: { include_usage: true }, ...params() };
  if ($('model').value) body.model = $('model').value;
  controller = new AbortController();
  $('send').disabled = true; $('stop').disabled = false;
  const t0 = performance.now();
  let tFirst = null, answer = '', usage = null, ponder = null, pending = false;
  const paint = () => { pending = false; renderMarkdown(outBody, answer); $('log').scrollTop = $('log').scrollHeight; };
  const reply = { role: 'assistant', content: '' };
  try {
    const r = await fetch('/v1/chat/completions', {
      method: 'POST', headers: { 'Content-Type': 'application/json', ...authHeaders() },
      body: JSON.stringify(body), signal: controller.signal,
    });
    if (!r.ok) {
      const j = await r.json().catch(() => null);
      throw new Error(j && j.error ? `${r.status}: ${j.error.message}` : `HTTP ${r.status}`);
    }
    await readSSE(r.body, (chunk) => {
      if (chunk.error) throw new Error(chunk.error.message);
      const delta = chunk.choices && chunk.choices[0] ? chunk.choices[0].delta : null;
      if (delta && delta.content) {
        if (tFirst === null) tFirst = performance.now();
        answer += delta.content;
        if (!pending) { pending = true; requestAnimationFrame(paint); }
      }
      if (chunk.usage) usage = chunk.usage;
      if (chunk.ponder) ponder = chunk.ponder;
    });
    const tEnd = performance.now();
    const secs = (tEnd - (tFirst ?? t0)) / 1000;
    const n = usage ? usage.completion_tokens : 0;
    // a strategy's answer arrives as one chunk: a client-side rate would be meaningless
    const rate = secs > 0.05 ? `, ${(n / secs).toFixed(1)} tokens/s (client)` : '';
    $('speed').textContent = `${plural(n, 'token')}${rate}, first token after ${((tFirst ?? tEnd) - t0).toFixed(0)} ms, ` +
      `done after ${(tEnd - t0).toFixed(0)} ms`;
    reply.meta = describe(usage, ponder, secs);
    $('cost').textContent = reply.meta;
    $('ponder').textContent = JSON.stringify({ usage, ponder }, (k, v) => (typeof v === 'number' && !Number.isInteger(v) ? Number(v.toPrecision(6)) : v), 2);
  } catch (e) {
    if (e.name !== 'AbortError') {
      reply.error = true;
      reply.meta = 'error: ' + e.message;
      out.classList.add('error');
    } else {
      reply.meta = 'stopped';
    }
  } finally {
    reply.content = answer;
    renderMarkdown(outBody, answer);
    const meta = document.createElement('div');
    meta.className = 'meta';
    meta.textContent = reply.meta || '';
    out.appendChild(meta);
    c.messages.push(reply);
    c.updated = Date.now();
    saveChats();
    out.classList.remove('streaming');
    out.classList.add('done');
    controller = null;
    $('send').disabled = false; $('stop').disabled = true;
  }
}

// ---- wiring ----------------------------------------------------------------------------

$('composer').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const text = $('input').value.trim();
  if (!text || controller) return;
  $('input').value = '';
  send(text);
});
$('input').addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter' && !ev.shiftKey) { ev.preventDefault(); $('composer').requestSubmit(); }
});
$('stop').addEventListener('click', () => { if (controller) controller.abort(); });
$('clear').addEventListener('click', () => { if (controller) return; newChat(); saveChats(); renderChat(); });
$('api_key').addEventListener('change', () => loadModels($('model').value));
for (const id of [...SETTING_IDS, 'model']) $(id).addEventListener('change', saveSettings);

const saved = restoreSettings();
if (!chat()) current = chats[0] ? chats[0].id : null;
renderChat();
loadModels(saved.model);
