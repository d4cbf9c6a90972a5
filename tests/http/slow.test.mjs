// Slow clients (issue 18): 500 slowloris connections (headers trickled a byte at a time,
// which resets libmicrohttpd's inactivity timer forever) do not keep a normal request
// waiting, and each is closed at the header deadline; a body trickled past the body
// deadline and a kept-alive connection past the idle time-out are closed too; the
// per-client connection cap refuses the connection over it and not other clients'; a
// client that leaves is counted as cancelled with its tokens; a client that half-closes
// after its whole request still gets its answer.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, STORIES, postJSON, request, metrics, sleep } from '../integration/helpers.mjs';
import { connect, collect, statuses } from './raw.mjs';

const N_SLOW = 500;

function closed(sock) {
  return new Promise((resolve) => {
    if (sock.destroyed) return resolve();
    sock.once('close', resolve);
  });
}

async function timed(fn) {
  const t0 = performance.now();
  const r = await fn();
  return { r, ms: performance.now() - t0 };
}

describe('slow clients', () => {
  let srv;
  before(async () => {
    srv = await startServer(['-m', STORIES, '--chatml', '-c', '1024', '--header-timeout', '3', '--body-timeout', '2',
      '--idle-timeout', '2']);
  });
  after(async () => { assert.equal(await srv.stop(), 0); });

  test(`${N_SLOW} slowloris clients: a normal request is answered in < 100 ms; they are cut at the header deadline`, async () => {
    const slow = [];
    // from the normal client's own address: one address may hold half the connections
    // (512 of the default 1024), so 500 fit and the normal request still gets in beside them
    for (let i = 0; i < N_SLOW; i++) {
      const s = await connect(srv.url);
      s.on('error', () => {});
      s.write('POST /v1/completions HTTP/1.1\r\nHost: x\r\n');
      slow.push(s);
    }
    const t0 = Date.now();
    const trickle = setInterval(() => { for (const s of slow) if (!s.destroyed) s.write('X'); }, 400);
    try {
      await sleep(300);
      const body = { prompt: 'Once upon a time', max_tokens: 4, temperature: 0 };
      const times = [];
      for (let i = 0; i < 5; i++) {
        const h = await timed(() => request(srv.url + '/health'));
        assert.equal(h.r.status, 200);
        const c = await timed(() => postJSON(srv.base + '/completions', body));
        assert.equal(c.r.status, 200);
        times.push(Math.max(h.ms, c.ms));
      }
      times.sort((a, b) => a - b);
      console.log(`# with ${N_SLOW} slow clients: /health + a 4-token completion, median ${times[2].toFixed(1)} ms, worst ${times[4].toFixed(1)} ms`);
      assert.ok(times[2] < 100, `median ${times[2]} ms`);
      // still trickling, yet every one is closed at the 3 s header deadline
      await Promise.all(slow.map(closed));
      const took = Date.now() - t0;
      console.log(`# all ${N_SLOW} closed after ${took} ms (header deadline 3 s)`);
      assert.ok(took < 6000, `took ${took} ms`);
    } finally {
      clearInterval(trickle);
      for (const s of slow) s.destroy();
    }
    const m = await metrics(srv.url);
    assert.ok(m.ponder_connections_timed_out_total >= N_SLOW, JSON.stringify(m.ponder_connections_timed_out_total));
  });

  test('a body trickled past the body deadline is cut', async () => {
    const s = await connect(srv.url);
    s.on('error', () => {});
    s.write('POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 200\r\n\r\n{');
    const t0 = Date.now();
    const trickle = setInterval(() => { if (!s.destroyed) s.write(' '); }, 300);
    await closed(s);
    clearInterval(trickle);
    const took = Date.now() - t0;
    assert.ok(took > 1500 && took < 4000, `closed after ${took} ms (body deadline 2 s)`);
  });

  test('a kept-alive connection is closed after the idle time-out', async () => {
    const s = await connect(srv.url);
    s.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
    const t0 = Date.now();
    const r = await collect(s, 5000);
    assert.deepEqual(statuses(r.text), [200]);
    assert.equal(r.closed, true);
    const took = Date.now() - t0;
    assert.ok(took > 1500 && took < 4000, `closed after ${took} ms (idle 2 s)`);
  });

  test('the per-client cap refuses the connection over it, not other clients', async () => {
    const capped = await startServer(['-m', STORIES, '--chatml', '--max-conn-per-client', '20']);
    const held = [];
    for (let i = 0; i < 20; i++) {
      const s = await connect(capped.url, { localAddress: '127.0.2.1' });
      s.on('error', () => {});
      held.push(s);
    }
    try {
      const over = await connect(capped.url, { localAddress: '127.0.2.1' });
      over.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
      const r = await collect(over, 2000);
      assert.equal(r.text, '', 'no answer over the cap');
      assert.equal(r.closed, true);
      const other = await connect(capped.url, { localAddress: '127.0.2.2' });
      other.write('GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      const ok = await collect(other, 2000);
      assert.deepEqual(statuses(ok.text), [200]);
    } finally {
      for (const s of held) s.destroy();
      assert.equal(await capped.stop(), 0);
    }
  });

  test('a client that leaves is counted as cancelled, with the tokens it was given', async () => {
    const before = await metrics(srv.url);
    const s = await connect(srv.url);
    const body = JSON.stringify({ prompt: 'Once upon a time', max_tokens: 1000, temperature: 0, n: 4 });
    s.write(`POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    await sleep(100);
    s.destroy(); // a full close: the server's interim 100 is answered with a reset
    let m;
    for (let i = 0; i < 100; i++) {
      m = await metrics(srv.url);
      if (m.ponder_requests_cancelled_total > before.ponder_requests_cancelled_total) break;
      await sleep(20);
    }
    assert.equal(m.ponder_requests_cancelled_total, before.ponder_requests_cancelled_total + 1);
    const tokens = m.ponder_completion_tokens_total - before.ponder_completion_tokens_total;
    assert.ok(tokens > 0 && tokens < 4000, `${tokens} tokens counted for the cancelled request`);
  });

  test('a client that half-closes after its request still gets its answer', async () => {
    for (const stream of [false, true]) {
      const s = await connect(srv.url, { allowHalfOpen: true });
      const body = JSON.stringify({ prompt: 'Once upon a time', max_tokens: 16, temperature: 0, stream });
      s.write(`POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
      s.end(); // shutdown(SHUT_WR): the request is whole, the client still reads
      const r = await collect(s, 5000);
      s.destroy();
      const st = statuses(r.text);
      assert.equal(st[st.length - 1], 200, r.text);
      assert.ok(st.every((x) => x === 100 || x === 200), `only interim 100s before the answer: ${st}`);
      if (stream) assert.match(r.text, /data: \[DONE\]/);
      else assert.match(r.text, /"text_completion"/);
    }
  });
});
