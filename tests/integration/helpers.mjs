// Shared by the integration tests: start `ponder serve` on a free loopback port (--port 0;
// the port is read from the "listening on" line), raw HTTP helpers, SSE parsing.
import { spawn } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import fs from 'node:fs';

export const BIN = process.env.PONDER_BIN;
const shared = process.env.PONDER_SHARED || process.env.PONDER_SHARED_DEFAULT || '../shared';
export const STORIES = path.join(shared, 'models/stories260K/stories260K.gguf');
export const SMOLLM = path.join(shared, 'models/synthetic/syn-tiny-smollm-Q4_K_M.gguf');

export function haveFile(p) {
  try { fs.accessSync(p); return true; } catch { return false; }
}

// Starts a server; resolves { url, base, proc, stderr(), stop() } once it listens.
export function startServer(args) {
  if (!BIN) throw new Error('PONDER_BIN is not set (run through ctest)');
  return new Promise((resolve, reject) => {
    const proc = spawn(BIN, ['serve', '--port', '0', '-t', '1', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    let done = false;
    const timer = setTimeout(() => { if (!done) { done = true; proc.kill('SIGKILL'); reject(new Error('server did not start:\n' + err)); } }, 30000);
    proc.stderr.on('data', (d) => {
      err += d.toString();
      const m = err.match(/listening on (http:\/\/[^\s]+)/);
      if (m && !done) {
        done = true;
        clearTimeout(timer);
        const url = m[1];
        resolve({
          url, base: url + '/v1', proc,
          stderr: () => err,
          stop: () => new Promise((res) => {
            if (proc.exitCode !== null) return res(proc.exitCode);
            proc.once('exit', (code, sig) => res(code ?? sig));
            proc.kill('SIGTERM');
          }),
        });
      }
    });
    proc.on('exit', (code) => {
      if (!done) { done = true; clearTimeout(timer); reject(new Error(`server exited with ${code}:\n${err}`)); }
    });
  });
}

// One HTTP request; resolves { status, headers, body } (body a string).
export function request(url, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

export async function postJSON(url, obj, headers = {}) {
  const r = await request(url, { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: JSON.stringify(obj) });
  let json = null;
  try { json = JSON.parse(r.body); } catch { /* left null */ }
  return { ...r, json };
}

// "data: ..." events of an SSE body (comments skipped); [DONE] kept as the string.
export function parseSSE(text) {
  const out = [];
  for (const block of text.split('\n\n')) {
    for (const line of block.split('\n')) {
      if (!line.startsWith('data: ')) continue;
      const data = line.slice(6);
      out.push(data === '[DONE]' ? data : JSON.parse(data));
    }
  }
  return out;
}

export async function metrics(url) {
  const r = await request(url + '/metrics');
  const m = {};
  for (const line of r.body.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    m[line.slice(0, i)] = Number(line.slice(i + 1));
  }
  return m;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A usage object's token counts: prompt_tokens_details.cached_tokens is left out, as it
// depends on what earlier requests left in the server's prompt cache (it is checked to be
// within 0..prompt_tokens).
export function usageCounts(u) {
  const cached = u.prompt_tokens_details?.cached_tokens ?? 0;
  if (!(cached >= 0 && cached <= u.prompt_tokens)) throw new Error(`cached_tokens ${cached} of ${u.prompt_tokens}`);
  return { prompt_tokens: u.prompt_tokens, completion_tokens: u.completion_tokens, total_tokens: u.total_tokens };
}
