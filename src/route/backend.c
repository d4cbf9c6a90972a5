/*
 * backend.c — one OpenAI-compatible request to a backend, through libcurl.
 *
 * The transfer runs on a curl multi handle polled every RT_POLL_MS, so the router's own
 * deadlines (first token, silence in a stream) and a client that went away are noticed
 * within that time, not at libcurl's once-a-second progress pace. Stream bytes go through
 * the incremental SSE parser straight to the caller: nothing of an answer is buffered
 * beyond the event being parsed.
 *
 * A local backend is a ponder_server (the ordinary engine with continuous batching) bound
 * to 127.0.0.1 on an ephemeral port with a random API key, reached by the same code: one
 * protocol, one set of failure rules, and a local model is exactly what `ponder serve -m`
 * would serve.
 */
#include "route/route_internal.h"
#include "http/http.h"

#include "ponder/server.h"

#include <curl/curl.h>
#include <jansson.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define RT_POLL_MS 20
#define RT_MAX_BODY_BYTES (32u << 20) /* a non-streaming answer or an error body */

struct ponder_backend {
    ponder_route_backend_cfg cfg; /* deep copy */
    char *auth;                   /* "Authorization: Bearer KEY", or NULL */
    char *base;                   /* the URL requests go to (a local server's own for local) */
    ponder_server *local;
};

static const char *const failure_names[PONDER_BACKEND_FAILURE_COUNT] = {
    "ok", "connect", "timeout_connect", "timeout_first_token", "timeout_idle", "http_5xx", "http_429",
    "http_auth", "http_client_error", "broken_stream", "protocol", "load", "circuit_open", "cancelled",
};

const char *ponder_backend_failure_name(ponder_backend_failure f)
{
    return (unsigned)f < PONDER_BACKEND_FAILURE_COUNT ? failure_names[f] : "unknown";
}

void ponder_backend_result_clear(ponder_backend_result *r)
{
    if (!r)
        return;
    free(r->body);
    memset(r, 0, sizeof *r);
    r->retry_after_s = -1;
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static bool copy_cfg(ponder_route_backend_cfg *d, const ponder_route_backend_cfg *s)
{
    *d = *s;
    d->name = dup_or_null(s->name);
    d->path = dup_or_null(s->path);
    d->api_base = dup_or_null(s->api_base);
    d->model = dup_or_null(s->model);
    d->api_key_env = dup_or_null(s->api_key_env);
    return (!s->name || d->name) && (!s->path || d->path) && (!s->api_base || d->api_base) &&
           (!s->model || d->model) && (!s->api_key_env || d->api_key_env);
}

static bool random_key(char *out, size_t n_hex)
{
    unsigned char raw[32];
    FILE *f = fopen("/dev/urandom", "rb");
    if (!f)
        return false;
    bool ok = fread(raw, 1, sizeof raw, f) == sizeof raw;
    fclose(f);
    for (size_t i = 0; ok && i < n_hex && i / 2 < sizeof raw; i++)
        out[i] = "0123456789abcdef"[(raw[i / 2] >> (i % 2 ? 0 : 4)) & 15];
    out[n_hex] = '\0';
    return ok;
}

ponder_status ponder_backend_create(const ponder_route_backend_cfg *cfg, const ponder_backend_local_params *lp,
                                    ponder_backend **out, ponder_error *err)
{
    *out = NULL;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return ponder_error_set(err, PONDER_ERR_INTERNAL, "libcurl failed to initialize");
    ponder_backend *b = calloc(1, sizeof *b);
    if (!b || !copy_cfg(&b->cfg, cfg)) {
        if (b)
            ponder_backend_free(b); /* which cleans up libcurl */
        else
            curl_global_cleanup();
        return ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory");
    }
    char key[65];
    const char *key_text = NULL;
    if (cfg->kind == PONDER_BACKEND_REMOTE) {
        if (cfg->api_key_env) {
            key_text = getenv(cfg->api_key_env);
            if (!key_text || !key_text[0]) {
                ponder_backend_free(b);
                return ponder_error_set(err, PONDER_ERR_INVALID_ARG,
                                        "backend '%s': the environment variable %s (api_key_env) is not set",
                                        cfg->name, cfg->api_key_env);
            }
        }
        /* a URL libcurl cannot parse would fail every request the same way: refuse it now */
        CURLU *u = curl_url();
        CURLUcode uc = u ? curl_url_set(u, CURLUPART_URL, cfg->api_base, 0) : CURLUE_OUT_OF_MEMORY;
        curl_url_cleanup(u);
        if (uc != CURLUE_OK) {
            ponder_backend_free(b);
            return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "backend '%s': api_base '%s' is not a valid URL",
                                    cfg->name, cfg->api_base);
        }
        b->base = strdup(cfg->api_base);
    } else {
        ponder_server_params sp = ponder_server_params_default();
        sp.host = "127.0.0.1";
        sp.port = 0;
        if (cfg->n_parallel > 0)
            sp.n_parallel = cfg->n_parallel;
        else if (lp && lp->n_parallel > 0)
            sp.n_parallel = lp->n_parallel;
        sp.n_ctx = cfg->n_ctx > 0 ? cfg->n_ctx : lp ? lp->n_ctx : 0;
        sp.n_threads = lp ? lp->n_threads : 1;
        sp.chatml = lp && lp->chatml;
        sp.draft_path = cfg->draft;
        sp.log = lp ? lp->log : NULL;
        sp.log_user = lp ? lp->log_user : NULL;
        /* only the router may talk to its in-process engine */
        if (!random_key(key, 48)) {
            ponder_backend_free(b);
            return ponder_error_set(err, PONDER_ERR_IO, "cannot read /dev/urandom");
        }
        sp.api_key = key;
        key_text = key;
        ponder_status st = ponder_server_create(cfg->path, &sp, &b->local, err);
        if (st == PONDER_OK)
            st = ponder_server_start(b->local, err);
        if (st != PONDER_OK) {
            ponder_backend_free(b);
            return st;
        }
        char base[64];
        snprintf(base, sizeof base, "http://127.0.0.1:%d/v1", ponder_server_port(b->local));
        b->base = strdup(base);
    }
    if (key_text) {
        size_t n = strlen(key_text) + 32;
        if ((b->auth = malloc(n)))
            snprintf(b->auth, n, "Authorization: Bearer %s", key_text);
    }
    if (!b->base || (key_text && !b->auth)) {
        ponder_backend_free(b);
        return ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory");
    }
    *out = b;
    return PONDER_OK;
}

const ponder_route_backend_cfg *ponder_backend_config(const ponder_backend *b) { return &b->cfg; }

void ponder_backend_free(ponder_backend *b)
{
    if (!b)
        return;
    ponder_server_free(b->local);
    free(b->cfg.name);
    free(b->cfg.path);
    free(b->cfg.api_base);
    free(b->cfg.model);
    free(b->cfg.api_key_env);
    free(b->auth);
    free(b->base);
    free(b);
    curl_global_cleanup();
}

/* ---- one transfer ---- */

typedef struct xfer {
    const ponder_backend_call *call;
    ponder_backend_result *res;
    CURL *h;
    rt_sse sse;
    http_buf body;              /* non-stream answer or an error body */
    bool too_big;
    bool aborted;              /* the caller's callback said stop */
    bool error_event;          /* the stream carried an error object */
    bool saw_finish;
    double t0, t_first, t_last;
} xfer;

static long status_of(xfer *x)
{
    long code = 0;
    curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &code);
    return code;
}

static bool nonempty_string(json_t *v) { return json_is_string(v) && json_string_length(v) > 0; }

/* One SSE payload of a 200 stream. */
static bool on_sse(const char *data, size_t len, void *user)
{
    xfer *x = user;
    if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        x->res->done = true;
        return true;
    }
    json_t *j = json_loadb(data, len, 0, NULL);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        snprintf(x->res->message, sizeof x->res->message, "a stream event is not a JSON object");
        x->error_event = true;
        x->res->failure = PONDER_BACKEND_PROTOCOL;
        return false;
    }
    json_t *e = json_object_get(j, "error");
    if (e) {
        /* a server that fails mid-stream says so in an event (ponder serve, vLLM) */
        json_t *m = json_is_object(e) ? json_object_get(e, "message") : e;
        snprintf(x->res->message, sizeof x->res->message, "error event in the stream: %s",
                 json_is_string(m) ? json_string_value(m) : "(no message)");
        x->error_event = true;
        json_decref(j);
        return false;
    }
    /* the first token: text, or a finish (an empty answer), or usage; a role-only chunk
     * arrives before any decoding and is not one */
    bool token = json_is_object(json_object_get(j, "usage"));
    json_t *choices = json_object_get(j, "choices");
    size_t i;
    json_t *c;
    json_array_foreach(choices, i, c) {
        json_t *d = json_object_get(c, "delta");
        if (nonempty_string(json_object_get(d, "content")) || nonempty_string(json_object_get(c, "text")) ||
            json_object_get(d, "tool_calls"))
            token = true;
        json_t *fr = json_object_get(c, "finish_reason");
        if (fr && !json_is_null(fr)) {
            token = true;
            x->saw_finish = true;
        }
    }
    json_decref(j);
    if (token && x->t_first == 0) {
        x->t_first = http_now_ms();
        x->res->ttft_ms = x->t_first - x->t0;
    }
    x->res->n_events++;
    if (x->call->on_event && !x->call->on_event(data, len, x->call->user)) {
        x->aborted = true;
        return false;
    }
    return true;
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *user)
{
    xfer *x = user;
    size_t n = size * nmemb;
    x->t_last = http_now_ms();
    if (x->call->stream && status_of(x) == 200) {
        if (!rt_sse_feed(&x->sse, ptr, n, on_sse, x)) {
            if (x->sse.oom) {
                snprintf(x->res->message, sizeof x->res->message, "a stream event is too large");
                x->error_event = true;
                x->res->failure = PONDER_BACKEND_PROTOCOL;
            }
            return 0; /* abort the transfer */
        }
        return n;
    }
    if (x->body.len + n > RT_MAX_BODY_BYTES) {
        x->too_big = true;
        return 0;
    }
    if (!http_buf_append(&x->body, ptr, n))
        return 0;
    return n;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *user)
{
    xfer *x = user;
    size_t n = size * nitems;
    static const char name[] = "retry-after:";
    if (n > sizeof name - 1 && strncasecmp(buf, name, sizeof name - 1) == 0) {
        /* delta-seconds only; an HTTP-date is left as "absent" (back-off applies) */
        const char *v = buf + sizeof name - 1;
        while (v < buf + n && (*v == ' ' || *v == '\t'))
            v++;
        char tmp[32];
        size_t k = 0;
        while (v < buf + n && k < sizeof tmp - 1 && (isdigit((unsigned char)*v) || *v == '.'))
            tmp[k++] = *v++;
        tmp[k] = '\0';
        if (k)
            x->res->retry_after_s = strtod(tmp, NULL);
    }
    return n;
}

/* "HTTP 500: message" from an OpenAI-shaped error body, else its first bytes. */
static void describe_status(xfer *x, long code)
{
    const char *msg = NULL;
    json_t *j = x->body.data ? json_loadb(x->body.data, x->body.len, 0, NULL) : NULL;
    json_t *e = json_object_get(j, "error");
    json_t *m = json_is_object(e) ? json_object_get(e, "message") : e;
    if (json_is_string(m))
        msg = json_string_value(m);
    if (msg)
        snprintf(x->res->message, sizeof x->res->message, "HTTP %ld: %s", code, msg);
    else
        snprintf(x->res->message, sizeof x->res->message, "HTTP %ld: %.200s", code,
                 x->body.data ? x->body.data : "(empty body)");
    json_decref(j);
}

static ponder_backend_failure finish_status(xfer *x, long code)
{
    ponder_backend_result *r = x->res;
    if (code == 429)
        return PONDER_BACKEND_HTTP_429;
    if (code >= 500)
        return PONDER_BACKEND_HTTP_5XX;
    if (code == 401 || code == 403 || code == 404)
        return PONDER_BACKEND_HTTP_AUTH;
    if (code >= 400)
        return PONDER_BACKEND_HTTP_CLIENT;
    snprintf(r->message, sizeof r->message, "unexpected HTTP status %ld", code);
    return PONDER_BACKEND_PROTOCOL;
}

ponder_backend_failure ponder_backend_request(ponder_backend *b, const ponder_backend_call *call,
                                              ponder_backend_result *res)
{
    memset(res, 0, sizeof *res);
    res->retry_after_s = -1;
    xfer x;
    memset(&x, 0, sizeof x);
    x.call = call;
    x.res = res;
    rt_sse_init(&x.sse);
    x.t0 = x.t_last = http_now_ms();

    char url[2048];
    snprintf(url, sizeof url, "%s%s", b->base,
             call->endpoint == PONDER_BACKEND_CHAT ? "/chat/completions" : "/completions");
    struct curl_slist *hdr = NULL, *t;
    bool oom = false;
    const char *lines[] = { "Content-Type: application/json", call->stream ? "Accept: text/event-stream" : NULL,
                            "Expect:", b->auth };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        if (!lines[i])
            continue;
        if (!(t = curl_slist_append(hdr, lines[i])))
            oom = true;
        else
            hdr = t;
    }
    CURL *h = x.h = oom ? NULL : curl_easy_init();
    CURLM *m = h ? curl_multi_init() : NULL;
    if (!m) {
        curl_slist_free_all(hdr);
        if (h)
            curl_easy_cleanup(h);
        snprintf(res->message, sizeof res->message, "out of memory");
        return res->failure = PONDER_BACKEND_PROTOCOL;
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, call->body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)call->body_len);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(b->cfg.connect_timeout_s * 1000));
    curl_easy_setopt(h, CURLOPT_USERAGENT, "ponder-router");
    curl_multi_add_handle(m, h);

    ponder_backend_failure ours = PONDER_BACKEND_OK; /* a deadline or a cancel decided here */
    int running = 1;
    while (running) {
        if (curl_multi_perform(m, &running) != CURLM_OK)
            break;
        if (!running)
            break;
        double now = http_now_ms();
        if (call->cancelled && call->cancelled(call->user)) {
            ours = PONDER_BACKEND_CANCELLED;
            snprintf(res->message, sizeof res->message, "the client went away");
            break;
        }
        if (call->stream) {
            if (x.t_first == 0 && now - x.t0 > b->cfg.first_token_timeout_s * 1000) {
                ours = PONDER_BACKEND_TIMEOUT_FIRST;
                snprintf(res->message, sizeof res->message, "no first token within %g s",
                         b->cfg.first_token_timeout_s);
                break;
            }
            if (x.t_first != 0 && now - x.t_last > b->cfg.timeout_s * 1000) {
                ours = PONDER_BACKEND_TIMEOUT_IDLE;
                snprintf(res->message, sizeof res->message, "the stream fell silent for %g s after %lld events",
                         b->cfg.timeout_s, (long long)res->n_events);
                break;
            }
        } else if (now - x.t0 > b->cfg.timeout_s * 1000) {
            ours = PONDER_BACKEND_TIMEOUT_FIRST;
            snprintf(res->message, sizeof res->message, "no answer within %g s", b->cfg.timeout_s);
            break;
        }
        curl_multi_poll(m, NULL, 0, RT_POLL_MS, NULL);
    }
    CURLcode cc = CURLE_OK;
    int left;
    CURLMsg *msg;
    while ((msg = curl_multi_info_read(m, &left)))
        if (msg->msg == CURLMSG_DONE)
            cc = msg->data.result;
    long code = status_of(&x);
    double connect_s = 0;
    curl_easy_getinfo(h, CURLINFO_CONNECT_TIME, &connect_s);
    res->http_status = (int)code;
    res->total_ms = http_now_ms() - x.t0;

    ponder_backend_failure f;
    if (ours != PONDER_BACKEND_OK) {
        f = ours;
    } else if (running) {
        f = PONDER_BACKEND_BROKEN;
        snprintf(res->message, sizeof res->message, "libcurl multi interface failed");
    } else if (x.aborted) {
        f = PONDER_BACKEND_CANCELLED;
        snprintf(res->message, sizeof res->message, "stopped by the caller");
    } else if (x.error_event) {
        f = res->failure == PONDER_BACKEND_PROTOCOL ? PONDER_BACKEND_PROTOCOL : PONDER_BACKEND_BROKEN;
    } else if (code == 0) {
        /* no HTTP answer at all */
        if (cc == CURLE_OPERATION_TIMEDOUT && connect_s == 0)
            f = PONDER_BACKEND_TIMEOUT_CONNECT;
        else if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST || cc == CURLE_COULDNT_RESOLVE_PROXY)
            f = PONDER_BACKEND_CONNECT;
        else
            f = PONDER_BACKEND_BROKEN;
        snprintf(res->message, sizeof res->message, "%s", curl_easy_strerror(cc));
    } else if (code != 200) {
        describe_status(&x, code);
        f = finish_status(&x, code);
    } else if (call->stream) {
        if (res->done || (x.saw_finish && cc == CURLE_OK)) {
            f = PONDER_BACKEND_OK;
        } else {
            f = PONDER_BACKEND_BROKEN;
            snprintf(res->message, sizeof res->message, "the stream ended after %lld events without [DONE]: %s",
                     (long long)res->n_events, cc == CURLE_OK ? "connection closed" : curl_easy_strerror(cc));
        }
    } else if (cc != CURLE_OK) {
        f = x.too_big ? PONDER_BACKEND_PROTOCOL : PONDER_BACKEND_BROKEN;
        snprintf(res->message, sizeof res->message, "%s",
                 x.too_big ? "the answer is larger than 32 MiB" : curl_easy_strerror(cc));
    } else {
        json_t *j = x.body.data ? json_loadb(x.body.data, x.body.len, 0, NULL) : NULL;
        f = json_is_array(json_object_get(j, "choices")) ? PONDER_BACKEND_OK : PONDER_BACKEND_PROTOCOL;
        if (f != PONDER_BACKEND_OK)
            snprintf(res->message, sizeof res->message, "the answer is not a completion object");
        json_decref(j);
        res->ttft_ms = res->total_ms;
    }
    if (f != PONDER_BACKEND_OK || !call->stream) {
        /* the body (answer or error) goes to the caller */
        res->body = x.body.data;
        res->body_len = x.body.len;
        x.body.data = NULL;
    }
    res->failure = f;
    curl_multi_remove_handle(m, h);
    curl_easy_cleanup(h);
    curl_multi_cleanup(m);
    curl_slist_free_all(hdr);
    rt_sse_free(&x.sse);
    free(x.body.data);
    return f;
}
