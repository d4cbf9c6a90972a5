// Strict framing in front of libmicrohttpd (issue 18): ambiguous or unsupported framing is
// refused with a 400 and the connection closed, so nothing smuggled in a body is answered;
// an oversized declared body is refused from its Content-Length before it is read, without
// "100 Continue". Raw sockets, a real `ponder serve` on loopback.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, STORIES } from '../integration/helpers.mjs';
import { raw, connect, collect, statuses, header, jsonBody } from './raw.mjs';

const H = 'Host: x\r\n';
const smuggled = 'GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n';

function refused(r, status = 400) {
  assert.deepEqual(statuses(r.text), [status], r.text);
  assert.match(header(r.text, 'Connection') ?? '', /close/i, r.text);
  assert.equal(r.closed, true, 'the connection is closed');
  const e = jsonBody(r.text).error;
  assert.equal(e.type, 'invalid_request_error');
  return e;
}

// libmicrohttpd answers these itself, before any callback of ours sees the headers, and
// closes the connection; 0.9.75 writes that answer's header block twice (src/http/guard.c),
// so only "every status line is this one, then closed" is asserted.
function mhdRefused(r, status, what) {
  const st = statuses(r.text);
  assert.ok(st.length >= 1 && st.every((s) => s === status), `${what}: ${r.text}`);
  assert.equal(r.closed, true, `${what}: closed`);
}

describe('framing', () => {
  let srv;
  before(async () => { srv = await startServer(['-m', STORIES, '--chatml', '--max-body', '65536']); });
  after(async () => { assert.equal(await srv.stop(), 0); });

  test('Content-Length with Transfer-Encoding: 400, the smuggled request not answered', async () => {
    const chunk = '0\r\n\r\n' + smuggled;
    const r = await raw(srv.url, `POST /v1/completions HTTP/1.1\r\n${H}Content-Type: application/json\r\n` +
      `Content-Length: ${chunk.length}\r\nTransfer-Encoding: chunked\r\n\r\n${chunk}`);
    assert.match(refused(r).message, /Content-Length.*Transfer-Encoding/);
  });

  test('two Content-Length headers: 400 (equal or not)', async () => {
    for (const [a, b] of [[2, 40], [2, 2]]) {
      const r = await raw(srv.url, `POST /v1/completions HTTP/1.1\r\n${H}Content-Length: ${a}\r\nContent-Length: ${b}\r\n\r\n{}` + smuggled);
      assert.match(refused(r).message, /Content-Length/);
    }
  });

  test('a non-numeric Content-Length: 400 and closed', async () => {
    for (const v of ['abc', '-1', '5x', '0x10']) {
      const r = await raw(srv.url, `POST /v1/completions HTTP/1.1\r\n${H}Content-Length: ${v}\r\n\r\n{}`);
      mhdRefused(r, 400, v);
    }
  });

  test('an unknown transfer coding: 400 and closed', async () => {
    for (const te of ['gzip', 'chunked, gzip', 'identity', 'xchunked']) {
      const r = await raw(srv.url, `POST /v1/completions HTTP/1.1\r\n${H}Transfer-Encoding: ${te}\r\n\r\n2\r\n{}\r\n0\r\n\r\n`);
      assert.match(refused(r).message, /Transfer-Encoding/, te);
    }
  });

  test('whitespace before a header colon: 400', async () => {
    const r = await raw(srv.url, `POST /v1/completions HTTP/1.1\r\n${H}Content-Length : 2\r\n\r\n{}`);
    refused(r);
  });

  test('HTTP/1.1 without Host: 400; HTTP/1.0 without Host is served', async () => {
    const r = await raw(srv.url, 'GET /health HTTP/1.1\r\n\r\n');
    assert.match(refused(r).message, /Host/);
    const ok = await raw(srv.url, 'GET /health HTTP/1.0\r\n\r\n');
    assert.deepEqual(statuses(ok.text), [200]);
  });

  test('a declared body over --max-body: 413 before the body, no 100 Continue', async () => {
    for (const len of ['100000000', '1000000000000000000']) {
      const s = await connect(srv.url);
      const t0 = Date.now();
      s.write(`POST /v1/completions HTTP/1.1\r\n${H}Content-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: ${len}\r\n\r\n`);
      const r = await collect(s, 3000);
      s.destroy();
      assert.ok(Date.now() - t0 < 2000, 'answered at once');
      const e = refused(r, 413);
      assert.equal(e.code, 'request_too_large');
    }
    // past 2^64: refused too (libmicrohttpd's own 413)
    const r = await raw(srv.url, `POST /v1/completions HTTP/1.1\r\n${H}Content-Length: 99999999999999999999999\r\n\r\n`);
    mhdRefused(r, 413, 'past 2^64');
  });

  test('a chunked body over --max-body: 413', async () => {
    const piece = 'x'.repeat(40000);
    const hex = piece.length.toString(16);
    const r = await raw(srv.url, `POST /v1/completions HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n` +
      `${hex}\r\n${piece}\r\n${hex}\r\n${piece}\r\n0\r\n\r\n`);
    assert.deepEqual(statuses(r.text), [413], r.text.slice(0, 300));
  });

  test('good framing still works: pipelined keep-alive requests, a chunked body', async () => {
    const r = await raw(srv.url, `GET /health HTTP/1.1\r\n${H}\r\nGET /health HTTP/1.1\r\n${H}\r\n`);
    assert.deepEqual(statuses(r.text), [200, 200]);
    assert.equal(r.closed, false, 'kept alive');
    const body = JSON.stringify({ prompt: 'Once', max_tokens: 2, temperature: 0 });
    const c = await raw(srv.url, `POST /v1/completions HTTP/1.1\r\n${H}Content-Type: application/json\r\nTransfer-Encoding: Chunked\r\n\r\n` +
      `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`);
    assert.deepEqual(statuses(c.text), [200], c.text);
  });
});
