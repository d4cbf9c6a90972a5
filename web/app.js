// The chat page: sends the conversation to /v1/chat/completions with stream: true,
// reads the SSE stream with fetch (no EventSource: it cannot POST), and shows the
// tokens as they come, then tokens/s and the answer's "ponder" object.
'use strict';
const $ = (id) => document.getElementById(id);
const history = [];
let controller = null;
let modelId = null;

async function loadModel() {
  try {
    const r = await fetch('/v1/models', { headers: authHeaders() });
    const j = await r.json();
    modelId = j.data && j.data[0] ? j.data[0].id : null;
    $('model').textContent = modelId || (j.error ? j.error.message : '?');
  } catch (e) { $('model').textContent = String(e); }
}

function authHeaders() {
  const k = $('api_key').value.trim();
  return k ? { Authorization: 'Bearer ' + k } : {};
}

function bubble(role, text) {
  const d = document.createElement('div');
  d.className = 'msg ' + role;
  d.textContent = text;
  $('log').appendChild(d);
  $('log').scrollTop = $('log').scrollHeight;
  return d;
}

function params() {
  const p = {};
  const num = (id) => { const v = $(id).value.trim(); return v === '' ? null : Number(v); };
  for (const k of ['temperature', 'top_p', 'max_tokens', 'seed']) { const v = num(k); if (v !== null && !Number.isNaN(v)) p[k] = v; }
  return p;
}

async function send(text) {
  history.push({ role: 'user', content: text });
  bubble('user', text);
  const out = bubble('assistant', '');
  out.classList.add('streaming');
  const messages = [];
  const sys = $('system').value.trim();
  if (sys) messages.push({ role: 'system', content: sys });
  messages.push(...history);
  const body = { messages, stream: true, stream_options: { include_usage: true }, ...params() };
  if (modelId) body.model = modelId;
  controller = new AbortController();
  $('send').disabled = true; $('stop').disabled = false;
  const t0 = performance.now();
  let tFirst = null, answer = '', usage = null, ponder = null;
  try {
    const r = await fetch('/v1/chat/completions', {
      method: 'POST', headers: { 'Content-Type': 'application/json', ...authHeaders() },
      body: JSON.stringify(body), signal: controller.signal,
    });
    if (!r.ok) {
      const j = await r.json().catch(() => null);
      throw new Error(j && j.error ? `${r.status}: ${j.error.message}` : `HTTP ${r.status}`);
    }
    const reader = r.body.getReader();
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
          if (data === '[DONE]') continue;
          const chunk = JSON.parse(data);
          if (chunk.error) throw new Error(chunk.error.message);
          const delta = chunk.choices && chunk.choices[0] ? chunk.choices[0].delta : null;
          if (delta && delta.content) {
            if (tFirst === null) tFirst = performance.now();
            answer += delta.content;
            out.textContent = answer;
            $('log').scrollTop = $('log').scrollHeight;
          }
          if (chunk.usage) usage = chunk.usage;
          if (chunk.ponder) ponder = chunk.ponder;
        }
      }
    }
    history.push({ role: 'assistant', content: answer });
    const secs = (performance.now() - (tFirst ?? t0)) / 1000;
    const n = usage ? usage.completion_tokens : 0;
    $('speed').textContent = `${n} tokens, ${secs > 0 ? (n / secs).toFixed(1) : '–'} tokens/s (client), ` +
      `first token after ${((tFirst ?? performance.now()) - t0).toFixed(0)} ms` +
      (ponder ? `; server: ${ponder.tokens_per_s.toFixed(1)} tokens/s` : '');
    $('ponder').textContent = JSON.stringify({ usage, ponder }, null, 2);
  } catch (e) {
    if (e.name === 'AbortError') {
      history.push({ role: 'assistant', content: answer });
    } else {
      out.classList.add('error');
      out.textContent = (answer ? answer + '\n' : '') + '[' + e.message + ']';
      history.pop();
    }
  } finally {
    out.classList.remove('streaming');
    out.classList.add('done');
    controller = null;
    $('send').disabled = false; $('stop').disabled = true;
  }
}

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
$('clear').addEventListener('click', () => { history.length = 0; $('log').textContent = ''; });
$('api_key').addEventListener('change', loadModel);
loadModel();
