/*
 * fetch.c — the HTTP side of `ponder pull` (libcurl): small JSON answers into memory, and
 * resumable, verified file downloads.
 *
 * A download appends to "<dest>.partial" (locked with flock, so two pulls of one file
 * cannot interleave), asking for the missing bytes with a Range header; a server that
 * answers 200 instead of 206 restarts it from zero. The sha256 runs over the bytes as
 * they arrive (over the kept prefix first, on a resume), so a multi-GB file is read once.
 * Only a file whose size and checksum match what the hub published is renamed into place
 * (fsync first: ponder_file_sync_rename); a mismatch deletes the partial file.
 */
#include "hub/hub_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <threads.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#define HUB_USER_AGENT "ponder-pull/1"
#define HUB_MAX_REDIRECTS 10
#define HUB_CONNECT_TIMEOUT_S 30L
#define HUB_ERROR_BODY_BYTES 4096
#define HUB_IO_CHUNK (1u << 20)

static once_flag g_curl_once = ONCE_FLAG_INIT;
static CURLcode g_curl_init_rc = CURLE_OK;

static void curl_init_once(void)
{
    g_curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

ponder_status hub_curl_init(ponder_error *err)
{
    call_once(&g_curl_once, curl_init_once);
    if (g_curl_init_rc != CURLE_OK)
        return ponder_error_set(err, PONDER_ERR_INTERNAL, "libcurl initialisation failed: %s",
                                curl_easy_strerror(g_curl_init_rc));
    return PONDER_OK;
}

/* Options every request shares: redirects within http(s), time-outs, identification. */
static void common_opts(CURL *h, const hub_ctx *c, const char *url, struct curl_slist *hdrs)
{
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, (long)HUB_MAX_REDIRECTS);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, HUB_CONNECT_TIMEOUT_S);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, c->p->low_speed_time_s > 0 ? c->p->low_speed_time_s : 60L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, HUB_USER_AGENT);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    /* A custom Authorization header is not sent on to another host after a redirect
     * (curl >= 7.58 without CURLOPT_UNRESTRICTED_AUTH): the CDN never sees the token. */
    if (hdrs)
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
}

/* ---- small answers ---- */

typedef struct membuf {
    char *p;
    size_t n, cap, max;
    bool too_big;
} membuf;

static size_t mem_write(char *data, size_t size, size_t nmemb, void *user)
{
    membuf *b = user;
    size_t add = size * nmemb;
    if (b->n + add + 1 > b->max) {
        b->too_big = true;
        return 0;
    }
    if (b->n + add + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 4096;
        while (nc < b->n + add + 1)
            nc *= 2;
        char *np = realloc(b->p, nc);
        if (!np)
            return 0;
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->n, data, add);
    b->n += add;
    b->p[b->n] = '\0';
    return add;
}

typedef struct link_next {
    char *out;
    size_t cap;
} link_next;

/* Link: <URL>; rel="next", <URL2>; rel="prev"  (RFC 8288, as the Hub paginates) */
static size_t link_header(char *data, size_t size, size_t nmemb, void *user)
{
    link_next *ln = user;
    size_t n = size * nmemb;
    if (n < 5 || strncasecmp(data, "Link:", 5) != 0 || !ln->out)
        return n;
    const char *p = data + 5, *end = data + n;
    while (p < end) {
        const char *lt = memchr(p, '<', (size_t)(end - p));
        const char *gt = lt ? memchr(lt, '>', (size_t)(end - lt)) : NULL;
        if (!gt)
            break;
        const char *comma = memchr(gt, ',', (size_t)(end - gt));
        const char *seg_end = comma ? comma : end;
        char params[256];
        snprintf(params, sizeof params, "%.*s", (int)(seg_end - gt - 1 < 255 ? seg_end - gt - 1 : 255), gt + 1);
        if (strstr(params, "rel=\"next\"") || strstr(params, "rel=next")) {
            if ((size_t)(gt - lt - 1) < ln->cap)
                snprintf(ln->out, ln->cap, "%.*s", (int)(gt - lt - 1), lt + 1);
            break;
        }
        p = seg_end + 1;
    }
    return n;
}

ponder_status hub_get(const hub_ctx *c, const char *url, bool send_auth, char **body, size_t *len, long *status,
                      char *next, size_t next_cap, ponder_error *err)
{
    link_next ln = {next, next_cap};
    if (next && next_cap)
        next[0] = '\0';
    *body = NULL;
    *len = 0;
    *status = 0;
    CURL *h = curl_easy_init();
    if (!h)
        return ponder_error_set(err, PONDER_ERR_NOMEM, "libcurl: cannot create a handle");
    struct curl_slist *hdrs = curl_slist_append(NULL, "Accept: application/json");
    if (hdrs && send_auth && c->auth[0])
        hdrs = curl_slist_append(hdrs, c->auth);
    membuf b = {.max = HUB_MAX_JSON_BYTES};
    char ebuf[CURL_ERROR_SIZE] = "";
    common_opts(h, c, url, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, mem_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, ""); /* listings compress well */
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, link_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &ln);
    CURLcode rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(h);
    curl_slist_free_all(hdrs);
    if (b.too_big) {
        free(b.p);
        return ponder_error_set(err, PONDER_ERR_RANGE, "%s: answer larger than %u MiB", url, HUB_MAX_JSON_BYTES >> 20);
    }
    if (rc != CURLE_OK) {
        free(b.p);
        return ponder_error_set(err, PONDER_ERR_IO, "%s: %s", url, ebuf[0] ? ebuf : curl_easy_strerror(rc));
    }
    if (!b.p && !(b.p = calloc(1, 1)))
        return ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory");
    *body = b.p;
    *len = b.n;
    return PONDER_OK;
}

ponder_status hub_http_error(const hub_ctx *c, long status, const char *what, const char *body, ponder_error *err)
{
    /* The Hub explains itself in an X-Error-Message header or a JSON {"error": ...}; a
     * short body is worth quoting. */
    char detail[200] = "";
    if (body && *body && strlen(body) < 180 && !strchr(body, '<'))
        snprintf(detail, sizeof detail, " (%.*s)", (int)strcspn(body, "\r\n"), body);
    if (status == 401)
        return ponder_error_set(err, PONDER_ERR_IO,
                                "%s: 401 Unauthorized%s: the repository is gated or private (or does not exist); %s",
                                what, detail,
                                c->auth[0] ? "the HF_TOKEN sent was refused: check it can read this repository"
                                           : "set HF_TOKEN to an access token that can read it");
    if (status == 403)
        return ponder_error_set(err, PONDER_ERR_IO,
                                "%s: 403 Forbidden%s: %s", what, detail,
                                c->auth[0] ? "HF_TOKEN has no access; accept the model's licence on its page first"
                                           : "access denied; a gated model needs HF_TOKEN and its licence accepted");
    if (status == 404)
        return ponder_error_set(err, PONDER_ERR_NOT_FOUND, "%s: 404 Not Found%s", what, detail);
    if (status == 429)
        return ponder_error_set(err, PONDER_ERR_IO, "%s: 429 Too Many Requests: rate limited, try again later", what);
    return ponder_error_set(err, PONDER_ERR_IO, "%s: HTTP %ld%s", what, status, detail);
}

/* ---- downloads ---- */

typedef struct dl_state {
    const hub_ctx *c;
    const hub_file *f;
    CURL *h;
    int fd;
    uint64_t have;       /* bytes in the partial file */
    uint64_t start;      /* bytes present when this transfer started */
    uint64_t downloaded; /* bytes received by this call, all transfers */
    EVP_MD_CTX *sha256, *sha1;
    bool checked;        /* the response status was looked at */
    bool restarted;      /* the server ignored Range: began again from zero */
    bool write_failed;
    int write_errno;
    long status;
    uint64_t range_start; /* from Content-Range of a 206 */
    bool have_range;
    char linked_etag[80]; /* X-Linked-Etag (the Hub: sha256 of an LFS file) */
    char etag[80];        /* ETag of the last response */
    uint64_t linked_size;
    membuf ebody;         /* the body of an error answer */
    bool cancelled;
} dl_state;

static void hex(const unsigned char *d, unsigned n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (unsigned i = 0; i < n; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
    out[2 * n] = '\0';
}

/* The value of an ETag-like header without quotes and the weak prefix. */
static void etag_value(const char *v, size_t n, char *out, size_t cap)
{
    while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
        n--;
    while (n && *v == ' ')
        v++, n--;
    if (n >= 2 && (v[0] == 'W' || v[0] == 'w') && v[1] == '/')
        v += 2, n -= 2;
    if (n >= 2 && v[0] == '"' && v[n - 1] == '"')
        v++, n -= 2;
    snprintf(out, cap, "%.*s", (int)n, v);
}

static bool is_hex(const char *s, size_t n)
{
    if (strlen(s) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!strchr("0123456789abcdefABCDEF", s[i]))
            return false;
    return true;
}

static size_t dl_header(char *data, size_t size, size_t nmemb, void *user)
{
    dl_state *s = user;
    size_t n = size * nmemb;
    if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) { /* a new response (after a redirect) */
        s->etag[0] = '\0';
        s->have_range = false;
        return n;
    }
    const char *colon = memchr(data, ':', n);
    if (!colon)
        return n;
    size_t kn = (size_t)(colon - data);
    const char *v = colon + 1;
    size_t vn = n - kn - 1;
    char val[128];
    if (kn == 13 && strncasecmp(data, "X-Linked-Etag", kn) == 0) {
        etag_value(v, vn, s->linked_etag, sizeof s->linked_etag);
    } else if (kn == 4 && strncasecmp(data, "ETag", kn) == 0) {
        etag_value(v, vn, s->etag, sizeof s->etag);
    } else if (kn == 13 && strncasecmp(data, "X-Linked-Size", kn) == 0) {
        etag_value(v, vn, val, sizeof val);
        s->linked_size = strtoull(val, NULL, 10);
    } else if (kn == 13 && strncasecmp(data, "Content-Range", kn) == 0) {
        etag_value(v, vn, val, sizeof val);
        unsigned long long a = 0;
        if (sscanf(val, "bytes %llu-", &a) == 1) {
            s->range_start = a;
            s->have_range = true;
        }
    }
    return n;
}

static bool digest_init(dl_state *s)
{
    if (!s->sha256 && !(s->sha256 = EVP_MD_CTX_new()))
        return false;
    if (!EVP_DigestInit_ex(s->sha256, EVP_sha256(), NULL))
        return false;
    if (s->f->git_sha1[0]) {
        /* git's blob id: sha1("blob <size>\0" + content) */
        char pre[48];
        int pn = snprintf(pre, sizeof pre, "blob %llu", (unsigned long long)s->f->size);
        if ((!s->sha1 && !(s->sha1 = EVP_MD_CTX_new())) || !EVP_DigestInit_ex(s->sha1, EVP_sha1(), NULL) ||
            !EVP_DigestUpdate(s->sha1, pre, (size_t)pn + 1))
            return false;
    }
    return true;
}

static void digest_update(dl_state *s, const void *p, size_t n)
{
    EVP_DigestUpdate(s->sha256, p, n);
    if (s->sha1)
        EVP_DigestUpdate(s->sha1, p, n);
}

static size_t dl_write(char *data, size_t size, size_t nmemb, void *user)
{
    dl_state *s = user;
    size_t n = size * nmemb;
    if (!s->checked) {
        s->checked = true;
        curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &s->status);
        if (s->status == 200 && s->have > 0) {
            /* Range ignored: the body is the whole file, so start over. */
            if (ftruncate(s->fd, 0) != 0 || !digest_init(s)) {
                s->write_failed = true;
                s->write_errno = errno;
                return 0;
            }
            s->have = s->start = 0;
            s->restarted = true;
        } else if (s->status == 206 && (!s->have_range || s->range_start != s->have)) {
            s->write_failed = true; /* a range we did not ask for */
            s->write_errno = EPROTO;
            return 0;
        }
    }
    if (s->status != 200 && s->status != 206)
        return mem_write(data, size, nmemb, &s->ebody) == n || s->ebody.too_big ? n : 0;
    if (s->f->size && s->have + n > s->f->size) {
        s->write_failed = true; /* more than the hub says the file has */
        s->write_errno = EFBIG;
        return 0;
    }
    size_t off = 0;
    while (off < n) {
        ssize_t w = pwrite(s->fd, data + off, n - off, (off_t)(s->have + off));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            s->write_failed = true;
            s->write_errno = w < 0 ? errno : ENOSPC;
            return 0;
        }
        off += (size_t)w;
    }
    digest_update(s, data, n);
    s->have += n;
    s->downloaded += n;
    return n;
}

static int dl_progress(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    (void)dlnow, (void)ultotal, (void)ulnow;
    dl_state *s = user;
    const ponder_hub_params *p = s->c->p;
    if (!p->progress || (s->checked && s->status != 200 && s->status != 206))
        return 0;
    uint64_t total = s->f->size ? s->f->size : s->linked_size ? s->linked_size
                                  : dltotal > 0                 ? s->start + (uint64_t)dltotal
                                                                : 0;
    if (!p->progress(s->have, total, p->progress_user)) {
        s->cancelled = true;
        return 1;
    }
    return 0;
}

/* Hashes the first s->have bytes already in the partial file. */
static ponder_status hash_prefix(dl_state *s, const char *partial, ponder_error *err)
{
    char *buf = malloc(HUB_IO_CHUNK);
    if (!buf)
        return ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory");
    uint64_t off = 0;
    while (off < s->have) {
        size_t want = s->have - off < HUB_IO_CHUNK ? (size_t)(s->have - off) : HUB_IO_CHUNK;
        ssize_t r = pread(s->fd, buf, want, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            free(buf);
            return ponder_error_set(err, PONDER_ERR_IO, "%s: read failed: %s", partial, r < 0 ? strerror(errno)
                                                                                            : "unexpected end");
        }
        digest_update(s, buf, (size_t)r);
        off += (uint64_t)r;
    }
    free(buf);
    return PONDER_OK;
}

/* One transfer from s->have on. Returns the curl code; s->status is the HTTP status. */
static CURLcode transfer(dl_state *s, char *ebuf)
{
    struct curl_slist *hdrs = NULL;
    if (s->f->send_auth && s->c->auth[0])
        hdrs = curl_slist_append(hdrs, s->c->auth);
    s->h = curl_easy_init();
    if (!s->h) {
        curl_slist_free_all(hdrs);
        return CURLE_OUT_OF_MEMORY;
    }
    s->checked = false;
    s->status = 0;
    s->start = s->have;
    s->ebody.n = 0;
    s->ebody.too_big = false;
    char range[48];
    common_opts(s->h, s->c, s->f->url, hdrs);
    if (s->have > 0) {
        snprintf(range, sizeof range, "%llu-", (unsigned long long)s->have);
        curl_easy_setopt(s->h, CURLOPT_RANGE, range);
    }
    curl_easy_setopt(s->h, CURLOPT_WRITEFUNCTION, dl_write);
    curl_easy_setopt(s->h, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(s->h, CURLOPT_HEADERFUNCTION, dl_header);
    curl_easy_setopt(s->h, CURLOPT_HEADERDATA, s);
    curl_easy_setopt(s->h, CURLOPT_XFERINFOFUNCTION, dl_progress);
    curl_easy_setopt(s->h, CURLOPT_XFERINFODATA, s);
    curl_easy_setopt(s->h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(s->h, CURLOPT_ERRORBUFFER, ebuf);
    CURLcode rc = curl_easy_perform(s->h);
    if (!s->checked)
        curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &s->status);
    curl_easy_cleanup(s->h);
    s->h = NULL;
    curl_slist_free_all(hdrs);
    return rc;
}

/* Transport failures worth another (resuming) attempt. */
static bool retryable(CURLcode rc)
{
    switch (rc) {
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_GOT_NOTHING:
    case CURLE_COULDNT_CONNECT:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR: return true;
    default: return false;
    }
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static const char *human(uint64_t n, char *buf, size_t cap)
{
    if (n < 1024)
        snprintf(buf, cap, "%llu B", (unsigned long long)n);
    else if (n < (1ull << 20))
        snprintf(buf, cap, "%.1f KiB", (double)n / 1024.0);
    else if (n < (1ull << 30))
        snprintf(buf, cap, "%.1f MiB", (double)n / (1 << 20));
    else
        snprintf(buf, cap, "%.2f GiB", (double)n / (1 << 30));
    return buf;
}

/* Runs transfers until the file is complete, a non-retryable error, or the retries end. */
static ponder_status fetch_loop(dl_state *s, const char *partial, ponder_hub_pull_result *res, ponder_error *err)
{
    const ponder_hub_params *p = s->c->p;
    int delay = p->retry_delay_ms > 0 ? p->retry_delay_ms : 0;
    for (int attempt = 0;; attempt++) {
        if (s->f->size && s->have == s->f->size)
            return PONDER_OK; /* a complete partial from an earlier run: only verify */
        char ebuf[CURL_ERROR_SIZE] = "";
        res->attempts++;
        CURLcode rc = transfer(s, ebuf);
        if (s->cancelled)
            return ponder_error_set(err, PONDER_ERR_IO, "%s: cancelled; %llu bytes kept in %s (pull again to resume)",
                                    s->f->label, (unsigned long long)s->have, partial);
        if (s->write_failed)
            return ponder_error_set(err, PONDER_ERR_IO, "%s: %s", partial,
                                    s->write_errno == EPROTO ? "the server answered a different byte range"
                                    : s->write_errno == EFBIG ? "the server sent more bytes than the hub lists"
                                                              : strerror(s->write_errno));
        if (s->status == 416 && s->have > 0 && !s->f->size)
            return PONDER_OK; /* nothing past the end: the partial file is whole; verify it */
        if (s->status >= 300 && (rc == CURLE_OK || s->ebody.n))
            return hub_http_error(s->c, s->status, s->f->label, s->ebody.p, err);
        bool complete = rc == CURLE_OK && (!s->f->size || s->have == s->f->size);
        if (complete)
            return PONDER_OK;
        if (rc != CURLE_OK && !retryable(rc))
            return ponder_error_set(err, PONDER_ERR_IO, "%s: %s", s->f->label, ebuf[0] ? ebuf : curl_easy_strerror(rc));
        if (attempt >= p->retries) {
            char a[32], b[32];
            return ponder_error_set(err, PONDER_ERR_IO,
                                    "%s: download interrupted at %s of %s (%s); the bytes so far are kept in %s: run "
                                    "the same ponder pull again to resume",
                                    s->f->label, human(s->have, a, sizeof a),
                                    s->f->size ? human(s->f->size, b, sizeof b) : "?",
                                    rc == CURLE_OK ? "the server closed the transfer early"
                                                   : ebuf[0] ? ebuf : curl_easy_strerror(rc),
                                    partial);
        }
        sleep_ms(delay);
        delay = delay ? delay * 2 : 0;
    }
}

/* The expected sha256: the caller's, the listing's, X-Linked-Etag, a sha256-shaped ETag. */
static const char *expected_sha256(const dl_state *s)
{
    const ponder_hub_params *p = s->c->p;
    if (p->sha256 && *p->sha256)
        return p->sha256;
    if (s->f->sha256[0])
        return s->f->sha256;
    if (is_hex(s->linked_etag, 64))
        return s->linked_etag;
    if (is_hex(s->etag, 64))
        return s->etag;
    return NULL;
}

static ponder_status verify(dl_state *s, const char *partial, const char *dest, ponder_hub_pull_result *res,
                            ponder_error *err)
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned dn = 0;
    EVP_DigestFinal_ex(s->sha256, d, &dn);
    hex(d, dn, res->sha256);
    res->bytes = s->have;
    uint64_t want = s->f->size ? s->f->size : s->linked_size;
    char a[32], b[32];
    if (want && s->have != want) {
        unlink(partial);
        return ponder_error_set(err, PONDER_ERR_FORMAT,
                                "%s: got %s but the hub lists %s; the partial download was discarded, nothing "
                                "installed",
                                s->f->label, human(s->have, a, sizeof a), human(want, b, sizeof b));
    }
    const char *exp = expected_sha256(s);
    if (exp) {
        if (strcasecmp(exp, res->sha256) != 0) {
            unlink(partial);
            return ponder_error_set(err, PONDER_ERR_FORMAT,
                                    "%s: checksum mismatch: sha256 %s, expected %.64s; the download was discarded "
                                    "and nothing was installed (pull again; if it repeats, the server's file is "
                                    "not the one it lists)",
                                    s->f->label, res->sha256, exp);
        }
        res->verified = true;
    } else if (s->sha1) {
        char got[41];
        EVP_DigestFinal_ex(s->sha1, d, &dn);
        hex(d, dn, got);
        if (strcasecmp(got, s->f->git_sha1) != 0) {
            unlink(partial);
            return ponder_error_set(err, PONDER_ERR_FORMAT,
                                    "%s: checksum mismatch: git blob %s, expected %s; the download was discarded "
                                    "and nothing was installed",
                                    s->f->label, got, s->f->git_sha1);
        }
        res->verified = true;
    }
    return ponder_file_sync_rename(partial, dest, err);
}

ponder_status hub_download(const hub_ctx *c, const hub_file *f, const char *dest, ponder_hub_pull_result *res,
                           ponder_error *err)
{
    char partial[PATH_MAX + 16];
    if (snprintf(partial, sizeof partial, "%s.partial", dest) >= (int)sizeof partial)
        return ponder_error_set(err, PONDER_ERR_RANGE, "%s: path too long", dest);
    dl_state s = {.c = c, .f = f, .fd = -1, .ebody = {.max = HUB_ERROR_BODY_BYTES}};
    ponder_status st = PONDER_OK;
    s.fd = open(partial, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (s.fd < 0)
        return ponder_error_set(err, PONDER_ERR_IO, "%s: cannot create: %s", partial, strerror(errno));
    if (flock(s.fd, LOCK_EX | LOCK_NB) != 0) {
        close(s.fd);
        return ponder_error_set(err, PONDER_ERR_IO, "%s: another ponder pull is downloading this file", partial);
    }
    struct stat sb;
    if (fstat(s.fd, &sb) != 0) {
        st = ponder_error_set(err, PONDER_ERR_IO, "%s: %s", partial, strerror(errno));
        goto done;
    }
    s.have = (uint64_t)sb.st_size;
    if (f->size && s.have > f->size) { /* longer than the file: not a prefix of it */
        if (ftruncate(s.fd, 0) != 0) {
            st = ponder_error_set(err, PONDER_ERR_IO, "%s: %s", partial, strerror(errno));
            goto done;
        }
        s.have = 0;
    }
    res->resumed_from = s.have;
    if (!digest_init(&s)) {
        st = ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory for the checksum");
        goto done;
    }
    if (s.have && (st = hash_prefix(&s, partial, err)) != PONDER_OK)
        goto done;
    st = fetch_loop(&s, partial, res, err);
    if (s.restarted)
        res->resumed_from = 0;
    res->downloaded = s.downloaded;
    if (st == PONDER_OK)
        st = verify(&s, partial, dest, res, err);
done:
    close(s.fd); /* releases the lock */
    EVP_MD_CTX_free(s.sha256);
    EVP_MD_CTX_free(s.sha1);
    free(s.ebody.p);
    return st;
}
