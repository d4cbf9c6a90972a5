// The chat page in headless Chromium (Debian's chromium, driven by playwright-core), against
// `ponder serve -m` and the router (`serve --config` with a cascade route): the model
// picker lists /v1/models, a streamed answer appears with its cost line in words and the
// same text the API gives, markdown is rendered and sanitised, code is highlighted, and the
// conversation survives a reload (localStorage). Screenshots go to the test's output
// folder (PONDER_SCREENSHOTS, else the system's temporary folder), named in the log.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { startServer, STORIES } from './helpers.mjs';

const CHROMIUM = '/usr/bin/chromium';
const skip = !fs.existsSync(CHROMIUM) && 'no /usr/bin/chromium';
const shots = process.env.PONDER_SCREENSHOTS || fs.mkdtempSync(path.join(os.tmpdir(), 'ponder-page-'));
let srv, router, browser, profile, dir;

const CASCADE = () => 'model_list:\n' +
  `  - model_name: small\n    backends: [{local: ${STORIES}}]\n    price: {input_per_1m: 0.5, output_per_1m: 1.0}\n` +
  `  - model_name: big\n    backends: [{local: ${STORIES}, name: big-a}]\n    price: {input_per_1m: 5.0, output_per_1m: 10.0}\n` +
  'routes:\n  auto:\n    cascade:\n' +
  '      - {model: small, strategy: "sc:2", cue: false, temperature: 0.9, accept_if: {agreement: 1, mean_logprob: 0}}\n' +
  '      - {model: big, strategy: cot, cue: false}\n';

before(async () => {
  if (skip) return;
  srv = await startServer(['-m', STORIES, '--chatml', '--parallel', '4']);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ponder-page-cfg-'));
  fs.writeFileSync(path.join(dir, 'cascade.yaml'), CASCADE());
  router = await startServer(['--config', path.join(dir, 'cascade.yaml'), '--chatml', '-c', '256', '--parallel', '2']);
  profile = fs.mkdtempSync(path.join(os.tmpdir(), 'ponder-chromium-'));
  // a fresh profile directory: playwright passes it to chromium as --user-data-dir
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 800 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});
after(async () => {
  if (browser) await browser.close();
  if (profile) fs.rmSync(profile, { recursive: true, force: true });
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
  if (srv) assert.equal(await srv.stop(), 0);
  if (router) assert.equal(await router.stop(), 0);
});

async function openPage(url) {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('dialog', (d) => { errors.push('dialog: ' + d.message()); d.dismiss(); });
  await page.goto(url + '/');
  return { page, errors };
}

async function shot(page, name) {
  const file = path.join(shots, name + '.png');
  await page.screenshot({ path: file, fullPage: true });
  console.log(`# screenshot: ${file}`);
}

async function ask(page, text) {
  const before = await page.locator('.msg.assistant.done').count();
  await page.fill('#input', text);
  await page.press('#input', 'Enter');
  await page.locator('.msg.assistant.done').nth(before).waitFor({ timeout: 60000 });
  return page.locator('.msg.assistant.done').nth(before);
}

test('serve -m: the picker, a streamed answer with its cost line, the same text as the API', { skip }, async () => {
  const { page, errors } = await openPage(srv.url);
  await page.waitForFunction(() => document.getElementById('model').value === 'stories260K');
  await page.fill('#max_tokens', '24');
  await page.fill('#temperature', '0');
  await page.fill('#seed', '1');
  const answer = await ask(page, 'Tell me about a cat.');
  const text = await answer.locator('.body').textContent();
  assert.ok(text.length > 0, 'an answer');
  assert.ok(!(await answer.getAttribute('class')).includes('error'), await answer.textContent());
  // the same request through the API gives the same greedy text (markdown of plain prose
  // renders to the same characters, but line breaks: compare without whitespace)
  const r = await fetch(srv.base + '/chat/completions', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ messages: [{ role: 'user', content: 'Tell me about a cat.' }], max_tokens: 24, temperature: 0, seed: 1 }),
  });
  const api = (await r.json()).choices[0].message.content;
  assert.equal(text.replace(/\s+/g, ''), api.replace(/\s+/g, ''));
  assert.match(await page.textContent('#speed'), /^24 tokens(, [\d.]+ tokens\/s \(client\))?, first token after \d+ ms, done after \d+ ms$/);
  const cost = await answer.locator('.meta').textContent();
  assert.match(cost, /^24 tokens out, \d+ in · [\d.]+ [kMGT]?FLOP · [\d.]+ m?s · \d+ tokens\/s$/, cost);
  assert.equal(cost, await page.textContent('#cost'));
  // the raw object, on request, has no 17-digit floats
  const raw = await page.textContent('#ponder');
  assert.ok(!/\d\.\d{8,}/.test(raw), raw);
  // a strategy from the picker goes in the request's ponder object
  await page.selectOption('#strategy', 'sc:4');
  const sc = await ask(page, 'Tell me about a dog.');
  assert.match(await sc.locator('.meta').textContent(), /sc:4, 4 chains, agreement \d+ %/);
  await shot(page, 'page-serve');
  assert.deepEqual(errors, []);
  await page.close();
});

test('markdown rendered and sanitised, code highlighted, the conversation kept over a reload', { skip }, async () => {
  const { page, errors } = await openPage(srv.url);
  await page.waitForFunction(() => document.getElementById('model').options.length > 0);
  const md = '# Title\n\nSome **bold** and `code`.\n\n```c\nint main(void) { return 0; }\n```\n\n' +
    '<img src=x onerror="alert(1)"><script>alert(2)</script>\n\n| a | b |\n| - | - |\n| 1 | 2 |\n';
  await page.evaluate((content) => {
    const chats = [{ id: 'cmd', title: 'markdown', updated: Date.now(), messages: [
      { role: 'user', content: 'show me <b>markdown</b>' },
      { role: 'assistant', content, meta: '1 tokens out, 1 in' }] }];
    localStorage.setItem('ponder.chats.v1', JSON.stringify(chats));
    localStorage.setItem('ponder.current.v1', 'cmd');
  }, md);
  await page.reload();
  const a = page.locator('.msg.assistant .body').first();
  await a.locator('h1').waitFor();
  assert.equal(await a.locator('h1').textContent(), 'Title');
  assert.equal(await a.locator('strong').textContent(), 'bold');
  assert.equal(await a.locator('table td').count(), 2);
  assert.ok(await a.locator('pre code.language-c .token.keyword').count() >= 2, 'C keywords highlighted');
  assert.equal(await a.locator('img[onerror]').count(), 0, 'event handlers stripped');
  assert.equal(await a.locator('script').count(), 0, 'scripts stripped');
  // the user's text is text, never markup
  assert.equal(await page.locator('.msg.user b').count(), 0);
  assert.equal(await page.locator('.msg.user').first().textContent(), 'show me <b>markdown</b>');
  assert.equal(await page.locator('#chat_list li.current .open').textContent(), 'markdown');
  // a new chat, then the old one again from the list
  await page.click('#clear');
  assert.equal(await page.locator('.msg').count(), 0);
  assert.equal(await page.locator('#chat_list li').count(), 2);
  await page.locator('#chat_list li .open', { hasText: 'markdown' }).click();
  await page.locator('.msg.assistant h1').waitFor();
  await shot(page, 'page-markdown');
  // deleting it leaves the empty chat
  await page.locator('#chat_list li', { hasText: 'markdown' }).locator('.delete').click();
  assert.equal(await page.locator('#chat_list li').count(), 1);
  await page.reload();
  assert.equal(await page.locator('#chat_list li').count(), 1);
  assert.deepEqual(errors, []);
  await page.close();
});

test('router: every model and route in the picker; a cascade answer says which stage answered', { skip }, async () => {
  const { page, errors } = await openPage(router.url);
  await page.waitForFunction(() => document.getElementById('model').options.length === 3);
  const ids = await page.$$eval('#model option', (os) => os.map((o) => o.value));
  assert.deepEqual(ids.sort(), ['auto', 'big', 'small']);
  await page.selectOption('#model', 'auto');
  await page.selectOption('#strategy', '');
  await page.fill('#max_tokens', '8');
  await page.fill('#seed', '5');
  const answer = await ask(page, 'Once upon a time');
  const meta = await answer.locator('.meta').textContent();
  // accept_if {agreement: 1, mean_logprob: 0} is never met by stories260K: stage 2 answers
  assert.match(meta, /answered by stage 2 \(big\), escalated because (agreement|mean_logprob) /, meta);
  assert.match(meta, /\$\d/, 'priced models show their cost');
  assert.doesNotMatch(meta, /tokens\/s/, 'no rate for an answer that arrived as one chunk');
  await shot(page, 'page-cascade');
  // a plain model through the router with a strategy: the backend's numbers, via "upstream"
  await page.selectOption('#model', 'small');
  await page.selectOption('#strategy', 'sc:4');
  const sc = await ask(page, 'Tell me about a dog.');
  const scMeta = await sc.locator('.meta').textContent();
  assert.match(scMeta, /FLOP · .* · by small\/0 · sc:4, 4 chains, agreement \d+ %/, scMeta);
  await page.selectOption('#model', 'auto');
  await page.selectOption('#strategy', '');
  // the choice of model is kept for the next visit
  await page.reload();
  await page.waitForFunction(() => document.getElementById('model').value === 'auto');
  assert.deepEqual(errors, []);
  await page.close();
});
