/*
 * backend_remote.c — a remote backend: one OpenAI-compatible request through libcurl.
 *
 * The transfer runs on a curl multi handle polled every RT_POLL_MS, so the router's own
 * deadlines (first token, silence in a stream) and a client that went away are noticed
 * within that time, not at libcurl's once-a-second progress pace. Bytes go to backend.c's
 * shared handling; how the transfer ended is told in rt_xfer_end terms.
 */
#include "route/backend_internal.h"

#include <curl/curl.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

ponder_status rt_remote_create(ponder_backend *b, ponder_error *err)
{
    const ponder_route_backend_cfg *cfg = &b->cfg;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return ponder_error_set(err, PONDER_ERR_INTERNAL, "libcurl failed to initialize");
    b->curl_ready = true;
    const char *key_text = NULL;
    if (cfg->api_key_env) {
        key_text = getenv(cfg->api_key_env);
        if (!key_text || !key_text[0])
            return ponder_error_set(err, PONDER_ERR_INVALID_ARG,
                                    "backend '%s': the environment variable %s (api_key_env) is not set", cfg->name,
                                    cfg->api_key_env);
    }
    /* a URL libcurl cannot parse would fail every request the same way: refuse it now */
    CURLU *u = curl_url();
    CURLUcode uc = u ? curl_url_set(u, CURLUPART_URL, cfg->api_base, 0) : CURLUE_OUT_OF_MEMORY;
    curl_url_cleanup(u);
    if (uc != CURLUE_OK)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "backend '%s': api_base '%s' is not a valid URL",
                                cfg->name, cfg->api_base);
    /* the URLs are as long as api_base makes them: nothing is cut */
    static const char *const paths[PONDER_BACKEND_ENDPOINT_COUNT] = { "/chat/completions", "/completions",
                                                                      "/embeddings" };
    for (int i = 0; i < PONDER_BACKEND_ENDPOINT_COUNT; i++) {
        size_t n = strlen(cfg->api_base) + strlen(paths[i]) + 1;
        if (!(b->url[i] = malloc(n)))
            return ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory");
        snprintf(b->url[i], n, "%s%s", cfg->api_base, paths[i]);
    }
    if (key_text) {
        size_t n = strlen(key_text) + 32;
        if ((b->auth = malloc(n)))
            snprintf(b->auth, n, "Authorization: Bearer %s", key_text);
    }
    if (key_text && !b->auth)
        return ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory");
    return PONDER_OK;
}

void rt_remote_release(ponder_backend *b)
{
    if (b->curl_ready)
        curl_global_cleanup();
    b->curl_ready = false;
}

typedef struct remote_xfer {
    rt_xfer x;
    CURL *h;
} remote_xfer;

static long status_of(remote_xfer *rx)
{
    long code = 0;
    curl_easy_getinfo(rx->h, CURLINFO_RESPONSE_CODE, &code);
    return code;
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *user)
{
    remote_xfer *rx = user;
    size_t n = size * nmemb;
    bool ok = rx->x.call->stream && status_of(rx) == 200 ? rt_xfer_stream_bytes(&rx->x, ptr, n)
                                                          : rt_xfer_body_bytes(&rx->x, ptr, n);
    return ok ? n : 0; /* 0 aborts the transfer */
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *user)
{
    remote_xfer *rx = user;
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
            rx->x.res->retry_after_s = strtod(tmp, NULL);
    }
    return n;
}

static struct curl_slist *headers(const ponder_backend *b, const ponder_backend_call *call)
{
    struct curl_slist *hdr = NULL, *t;
    const char *lines[] = { "Content-Type: application/json", call->stream ? "Accept: text/event-stream" : NULL,
                            "Expect:", b->auth };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        if (!lines[i])
            continue;
        if (!(t = curl_slist_append(hdr, lines[i]))) {
            curl_slist_free_all(hdr);
            return NULL;
        }
        hdr = t;
    }
    return hdr;
}

/* Runs the transfer until it ends or rt_xfer_check stops it; *running: the multi handle
 * failed with the transfer unfinished. */
static ponder_backend_failure run(remote_xfer *rx, CURLM *m, bool *running)
{
    int still = 1;
    while (still) {
        if (curl_multi_perform(m, &still) != CURLM_OK || !still)
            break;
        ponder_backend_failure ours = rt_xfer_check(&rx->x, http_now_ms());
        if (ours != PONDER_BACKEND_OK) {
            *running = false;
            return ours;
        }
        curl_multi_poll(m, NULL, 0, RT_POLL_MS, NULL);
    }
    *running = still != 0;
    return PONDER_BACKEND_OK;
}

ponder_backend_failure rt_remote_request(ponder_backend *b, const ponder_backend_call *call, ponder_backend_result *res)
{
    remote_xfer rx;
    rt_xfer_init(&rx.x, b, call, res);
    struct curl_slist *hdr = headers(b, call);
    CURL *h = rx.h = hdr ? curl_easy_init() : NULL;
    CURLM *m = h ? curl_multi_init() : NULL;
    if (!m) {
        curl_slist_free_all(hdr);
        if (h)
            curl_easy_cleanup(h);
        snprintf(res->message, sizeof res->message, "out of memory");
        rt_xfer_end e = { .ours = PONDER_BACKEND_PROTOCOL };
        return rt_xfer_finish(&rx.x, &e);
    }
    curl_easy_setopt(h, CURLOPT_URL, b->url[call->endpoint]);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, call->body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)call->body_len);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &rx);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &rx);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(b->cfg.connect_timeout_s * 1000));
    curl_easy_setopt(h, CURLOPT_USERAGENT, "ponder-router");
    curl_multi_add_handle(m, h);

    bool running = false;
    rt_xfer_end e = { .ours = run(&rx, m, &running) };
    CURLcode cc = CURLE_OK;
    int left;
    CURLMsg *msg;
    while ((msg = curl_multi_info_read(m, &left)))
        if (msg->msg == CURLMSG_DONE)
            cc = msg->data.result;
    double connect_s = 0;
    curl_easy_getinfo(h, CURLINFO_CONNECT_TIME, &connect_s);
    e.http_status = (int)status_of(&rx);
    e.clean = cc == CURLE_OK;
    e.transport_msg = curl_easy_strerror(cc);
    if (cc == CURLE_OPERATION_TIMEDOUT && connect_s == 0)
        e.no_answer = PONDER_BACKEND_TIMEOUT_CONNECT;
    else if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST || cc == CURLE_COULDNT_RESOLVE_PROXY)
        e.no_answer = PONDER_BACKEND_CONNECT;
    else
        e.no_answer = PONDER_BACKEND_BROKEN;
    if (e.ours == PONDER_BACKEND_OK && running) {
        e.ours = PONDER_BACKEND_BROKEN;
        snprintf(res->message, sizeof res->message, "libcurl multi interface failed");
    }
    ponder_backend_failure f = rt_xfer_finish(&rx.x, &e);
    curl_multi_remove_handle(m, h);
    curl_easy_cleanup(h);
    curl_multi_cleanup(m);
    curl_slist_free_all(hdr);
    return f;
}
