// The chat page in headless Chromium (Debian's chromium, driven by playwright-core):
// open /, type a message, watch the streamed answer appear with its numbers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { startServer, STORIES } from './helpers.mjs';

const CHROMIUM = '/usr/bin/chromium';
let srv, browser, profile;

before(async () => {
  srv = await startServer(['-m', STORIES, '--chatml', '--parallel', '2']);
});
after(async () => {
  if (browser) await browser.close();
  if (profile) fs.rmSync(profile, { recursive: true, force: true });
  assert.equal(await srv.stop(), 0);
});

test('type a message, see the streamed answer', { skip: !fs.existsSync(CHROMIUM) && 'no /usr/bin/chromium' }, async () => {
  profile = fs.mkdtempSync(path.join(os.tmpdir(), 'ponder-chromium-'));
  // a fresh profile directory: playwright passes it to chromium as --user-data-dir
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(srv.url + '/');
  await page.waitForFunction(() => document.getElementById('model').textContent === 'stories260K');
  await page.fill('#max_tokens', '24');
  await page.fill('#temperature', '0');
  await page.fill('#seed', '1');
  await page.fill('#input', 'Tell me about a cat.');
  await page.press('#input', 'Enter');
  await page.waitForSelector('.msg.user');
  const answer = page.locator('.msg.assistant.done');
  await answer.waitFor({ timeout: 30000 });
  const text = await answer.textContent();
  assert.ok(text.length > 0 && !text.startsWith('['), text);
  // the same request through the API gives the same greedy text
  const r = await fetch(srv.base + '/chat/completions', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ messages: [{ role: 'user', content: 'Tell me about a cat.' }], max_tokens: 24, temperature: 0, seed: 1 }),
  });
  assert.equal((await r.json()).choices[0].message.content, text);
  assert.match(await page.textContent('#speed'), /tokens\/s/);
  const shown = JSON.parse(await page.textContent('#ponder'));
  assert.equal(typeof shown.ponder.flops, 'number');
  assert.equal(shown.usage.completion_tokens, 24);
  assert.deepEqual(errors, []);
});
