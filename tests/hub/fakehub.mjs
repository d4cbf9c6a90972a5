// A loopback stand-in for the Hugging Face Hub, serving real GGUF files from ../shared:
// GET /api/models/O/R/tree/main[/DIR][?recursive=true] (path, size, oid, lfs.oid sha256),
// GET /api/models/O/R (siblings), GET /O/R/resolve/main/PATH (302 to /cdn/..., with
// X-Linked-Etag / X-Linked-Size as the Hub sends them) and the /cdn/ bytes with Range
// support. Per repository: gated (401 without the token), noTree (a mirror without the
// tree API), badSha (the listing's sha256 is wrong), cutAt (the first download of a file
// is cut after that many bytes). Plain files under /files/NAME with a sha256 ETag. Every
// request is logged for the tests to inspect. cdnHost serves /cdn/ under another host name
// (as the Hub's CDN is), to see what follows a redirect there.
import http from 'node:http';
import fs from 'node:fs';
import crypto from 'node:crypto';

function sha256(buf) {
  return crypto.createHash('sha256').update(buf).digest('hex');
}

function gitBlobSha1(buf) {
  return crypto.createHash('sha1').update(`blob ${buf.length}\0`).update(buf).digest('hex');
}

// repos: { 'owner/repo': { files: { 'path/in/repo.gguf': '/abs/source' }, gated, noTree, badSha, cutAt, noLfs,
//   chunkDelayMs, pageSize (the tree listing in pages of that many entries) } }
// files: { 'name.gguf': '/abs/source' } served at /files/NAME
export function startHub({ repos = {}, files = {}, token = 'secret-token', cdnHost = null } = {}) {
  const log = [];
  const cut = new Set(); // files already cut once
  const blobs = new Map();
  const load = (p) => {
    if (!blobs.has(p)) blobs.set(p, fs.readFileSync(p));
    return blobs.get(p);
  };

  const send = (res, status, body, headers = {}) => {
    const data = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data), ...headers });
    res.end(data);
  };

  // Serves buf honouring Range; cuts the connection after cutAt bytes when asked; with
  // chunkDelayMs, 64 KiB at a time with that pause between (a slow link).
  const serveBytes = (req, res, buf, etag, cutAt, chunkDelayMs) => {
    const m = /^bytes=(\d+)-$/.exec(req.headers.range || '');
    let start = 0;
    if (m) {
      start = Number(m[1]);
      if (start >= buf.length) {
        res.writeHead(416, { 'Content-Range': `bytes */${buf.length}` });
        return res.end();
      }
    }
    const body = buf.subarray(start);
    const headers = { 'Content-Type': 'application/octet-stream', 'Content-Length': body.length, ETag: `"${etag}"`, 'Accept-Ranges': 'bytes' };
    if (m) headers['Content-Range'] = `bytes ${start}-${buf.length - 1}/${buf.length}`;
    res.writeHead(m ? 206 : 200, headers);
    if (cutAt !== undefined && cutAt > start) {
      res.write(body.subarray(0, cutAt - start), () => setTimeout(() => res.socket.destroy(), 50));
      return;
    }
    if (chunkDelayMs) {
      let off = 0;
      const next = () => {
        if (res.destroyed) return;
        const end = Math.min(off + 65536, body.length);
        const last = end === body.length;
        res.write(body.subarray(off, end));
        off = end;
        if (last) res.end();
        else setTimeout(next, chunkDelayMs);
      };
      return next();
    }
    res.end(body);
  };

  const authorized = (req) => req.headers.authorization === `Bearer ${token}`;

  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    log.push({ method: req.method, host: req.headers.host, path: url.pathname, search: url.search, range: req.headers.range || null, auth: req.headers.authorization || null });
    let m;
    if ((m = /^\/api\/models\/([^/]+)\/([^/]+)(\/tree\/main(\/.*)?)?$/.exec(url.pathname))) {
      const repo = repos[`${m[1]}/${m[2]}`];
      if (!repo) return send(res, 404, { error: 'Repository not found' });
      if (repo.gated && !authorized(req)) return send(res, 401, { error: 'Invalid credentials in Authorization header' });
      if (!m[3]) return send(res, 200, { id: `${m[1]}/${m[2]}`, siblings: Object.keys(repo.files).map((f) => ({ rfilename: f })) });
      if (repo.noTree) return send(res, 404, { error: 'Not Found' });
      const dir = m[4] ? decodeURIComponent(m[4].slice(1)) : '';
      const recursive = url.searchParams.get('recursive') === 'true';
      const entries = [];
      for (const [p, src] of Object.entries(repo.files)) {
        const parent = p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '';
        if (!(recursive ? p.startsWith(dir) : parent === dir)) continue;
        const buf = load(src);
        const e = { type: 'file', oid: gitBlobSha1(buf), size: buf.length, path: p };
        if (!repo.noLfs) e.lfs = { oid: repo.badSha ? sha256(Buffer.from('not the file')) : sha256(buf), size: buf.length, pointerSize: 134 };
        entries.push(e);
      }
      entries.push({ type: 'file', oid: 'a'.repeat(40), size: 12, path: 'README.md' });
      if (repo.pageSize) { // pages linked by Link: <...>; rel="next", as the Hub pages long listings
        const from = Number(url.searchParams.get('cursor') || 0);
        const headers = {};
        if (from + repo.pageSize < entries.length) {
          const nextUrl = new URL(req.url, `http://127.0.0.1:${server.address().port}`);
          nextUrl.searchParams.set('cursor', String(from + repo.pageSize));
          headers.Link = `<${nextUrl.href}>; rel="next"`;
        }
        return send(res, 200, entries.slice(from, from + repo.pageSize), headers);
      }
      return send(res, 200, entries);
    }
    if ((m = /^\/([^/]+)\/([^/]+)\/resolve\/main\/(.+)$/.exec(url.pathname))) {
      const repo = repos[`${m[1]}/${m[2]}`];
      const p = decodeURIComponent(m[3]);
      if (!repo) return send(res, 404, { error: 'Repository not found' });
      if (repo.gated && !authorized(req)) return send(res, 401, { error: 'Access to model is restricted' });
      if (!repo.files[p]) return send(res, 404, { error: 'Entry not found' });
      const buf = load(repo.files[p]);
      const cdn = cdnHost ? `http://${cdnHost}:${server.address().port}` : '';
      res.writeHead(302, { Location: `${cdn}/cdn/${m[1]}/${m[2]}/${m[3]}`, 'X-Linked-Etag': `"${sha256(buf)}"`, 'X-Linked-Size': String(buf.length), 'Content-Length': 0 });
      return res.end();
    }
    if ((m = /^\/cdn\/([^/]+)\/([^/]+)\/(.+)$/.exec(url.pathname))) {
      const key = `${m[1]}/${m[2]}`;
      const repo = repos[key];
      const p = decodeURIComponent(m[3]);
      if (!repo || !repo.files[p]) return send(res, 404, { error: 'Entry not found' });
      const buf = load(repo.files[p]);
      let cutAt;
      if (repo.cutAt !== undefined && !cut.has(`${key}/${p}`)) {
        cut.add(`${key}/${p}`);
        cutAt = repo.cutAt;
      }
      return serveBytes(req, res, buf, sha256(buf), cutAt, repo.chunkDelayMs);
    }
    if ((m = /^\/files\/(.+)$/.exec(url.pathname))) {
      const src = files[decodeURIComponent(m[1])];
      if (!src) return send(res, 404, { error: 'no such file' });
      const buf = load(src);
      return serveBytes(req, res, buf, sha256(buf));
    }
    send(res, 404, { error: 'Not Found' });
  });

  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const url = `http://127.0.0.1:${server.address().port}`;
      resolve({
        url, log, token,
        resetCuts: () => cut.clear(),
        close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }),
      });
    });
  });
}

export { sha256 };
