/*
 * breaker.c — each backend's circuit breaker and the router's /metrics. K consecutive
 * failures open a backend's circuit (it is skipped); after cooldown_s one request probes it
 * (half-open) and its outcome closes or reopens it. A 429's Retry-After keeps a backend
 * aside until then. A refused request or a client that left says nothing about health.
 */
#include "route/router_internal.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const breaker_names[] = { "closed", "open", "half_open" };

/* May this request use be? Takes the half-open probe when it is free. */
ponder_backend_failure rt_admit(ponder_router *r, rt_be *be, double now, char *why, size_t cap)
{
    if (!be->b) {
        snprintf(why, cap, "%s", be->load_error);
        return PONDER_BACKEND_LOAD;
    }
    const ponder_route_settings *s = &r->cfg->settings;
    ponder_backend_failure f = PONDER_BACKEND_OK;
    pthread_mutex_lock(&r->mu);
    /* Retry-After first: a skipped request must not take the half-open probe */
    if (now < be->not_before_ms) {
        snprintf(why, cap, "rate limited: Retry-After ends in %.1f s", (be->not_before_ms - now) / 1000);
        f = PONDER_BACKEND_HTTP_429;
    } else if (!rt_within_limits(be, now, why, cap)) {
        f = PONDER_BACKEND_HTTP_429; /* its own rpm/tpm: the same as a 429 it would send */
    }
    if (f == PONDER_BACKEND_OK && s->breaker_failures > 0) {
        if (be->br == BR_OPEN && now - be->opened_ms >= s->breaker_cooldown_s * 1000) {
            be->br = BR_HALF_OPEN;
            be->probe_busy = false;
        }
        if (be->br == BR_OPEN) {
            snprintf(why, cap, "circuit open for %.1f s more after %d consecutive failures",
                     (s->breaker_cooldown_s * 1000 - (now - be->opened_ms)) / 1000, (int)be->consecutive);
            f = PONDER_BACKEND_CIRCUIT_OPEN;
        } else if (be->br == BR_HALF_OPEN) {
            if (be->probe_busy) {
                snprintf(why, cap, "circuit half-open: another request is probing it");
                f = PONDER_BACKEND_CIRCUIT_OPEN;
            } else {
                be->probe_busy = true;
            }
        }
    }
    if (f != PONDER_BACKEND_OK) {
        be->failures[f]++;
    } else {
        be->window_requests++;
        be->in_flight++;
    }
    pthread_mutex_unlock(&r->mu);
    return f;
}

/* When be's cool-down ends (ms, http_now_ms's clock); -1 when its circuit is not open. */
double rt_cooldown_end(ponder_router *r, rt_be *be)
{
    pthread_mutex_lock(&r->mu);
    double end = be->br == BR_OPEN ? be->opened_ms + r->cfg->settings.breaker_cooldown_s * 1000 : -1;
    pthread_mutex_unlock(&r->mu);
    return end;
}

/* Every backend of a chain was skipped: be, the open circuit whose cool-down ends first,
 * is probed now as if its cool-down had ended — unless another request is probing it, or
 * it opened less than RT_EARLY_PROBE_MS ago (a dead backend is asked at that pace, not by
 * every request). A backend that came back then answers within that time, not after the
 * rest of its cool-down. */
bool rt_admit_early_probe(ponder_router *r, rt_be *be, double now)
{
    bool ok = false;
    pthread_mutex_lock(&r->mu);
    if (be->b && be->br == BR_OPEN && now - be->opened_ms >= RT_EARLY_PROBE_MS && now >= be->not_before_ms) {
        be->br = BR_HALF_OPEN;
        be->probe_busy = ok = true;
        be->window_requests++;
        be->in_flight++;
        rt_log(r, PONDER_LOG_INFO, "backend %s: every backend of a chain is open: probing this one early",
               be->cfg->name);
    }
    pthread_mutex_unlock(&r->mu);
    return ok;
}

/* An admitted request that sent nothing gives the half-open probe back. */
void rt_release_probe(ponder_router *r, rt_be *be)
{
    pthread_mutex_lock(&r->mu);
    be->probe_busy = false;
    if (be->in_flight > 0)
        be->in_flight--;
    pthread_mutex_unlock(&r->mu);
}

void rt_report(ponder_router *r, rt_be *be, const ponder_backend_result *res, double now)
{
    const ponder_route_settings *s = &r->cfg->settings;
    ponder_backend_failure f = res->failure;
    pthread_mutex_lock(&r->mu);
    be->attempts++;
    if (be->in_flight > 0)
        be->in_flight--;
    if (f == PONDER_BACKEND_OK) {
        be->successes++;
        if (res->total_ms > 0) /* latency-based routing's moving average */
            be->latency_ms = be->latency_ms > 0 ? be->latency_ms + 0.2 * (res->total_ms - be->latency_ms)
                                                : res->total_ms;
    } else {
        be->failures[f]++;
    }
    /* a remote's Retry-After keeps it aside until then; a local backend's 429 is its queue
     * full at that moment, which the next request may find with room (the client gets the
     * Retry-After) */
    if (f == PONDER_BACKEND_HTTP_429 && res->retry_after_s > 0 && be->cfg->kind == PONDER_BACKEND_REMOTE)
        be->not_before_ms = now + res->retry_after_s * 1000;
    /* a refused request or a client that left says nothing about the backend's health, and
     * 401/403/404 (a key or a model name this backend does not know) is a configuration
     * to fix, not an outage: it opens no breaker by itself (LiteLLM's rule too) */
    bool neutral = f == PONDER_BACKEND_HTTP_CLIENT || f == PONDER_BACKEND_CANCELLED || f == PONDER_BACKEND_HTTP_AUTH;
    if (f == PONDER_BACKEND_OK) {
        if (be->br != BR_CLOSED)
            rt_log(r, PONDER_LOG_INFO, "backend %s: circuit closed", be->cfg->name);
        be->br = BR_CLOSED;
        be->consecutive = 0;
        be->probe_busy = false;
    } else if (!neutral) {
        be->consecutive++;
        if (s->breaker_failures > 0 &&
            (be->br == BR_HALF_OPEN || (be->br == BR_CLOSED && be->consecutive >= s->breaker_failures))) {
            be->br = BR_OPEN;
            be->opened_ms = now;
            be->opens++;
            rt_log(r, PONDER_LOG_WARN, "backend %s: circuit open for %g s after %d consecutive failures",
                 be->cfg->name, s->breaker_cooldown_s, (int)be->consecutive);
        }
        be->probe_busy = false;
    } else {
        be->probe_busy = false;
    }
    pthread_mutex_unlock(&r->mu);
}

/* One counter per backend: the uint64_t at offset `field` of each rt_be. */
static void backend_counter(http_buf *b, ponder_router *r, const char *name, const char *help, size_t field)
{
    http_buf_printf(b, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
    for (int32_t i = 0; i < r->n_be; i++) {
        uint64_t v;
        memcpy(&v, (const char *)&r->be[i] + field, sizeof v);
        http_buf_printf(b, "%s{backend=\"%s\"} %llu\n", name, r->be[i].cfg->name, (unsigned long long)v);
    }
}

static char *render_metrics(ponder_router *r)
{
    http_buf b = { 0 };
    double now = http_now_ms();
    pthread_mutex_lock(&r->mu);
    http_buf_printf(&b, "# HELP ponder_router_requests_total Requests by outcome.\n"
                        "# TYPE ponder_router_requests_total counter\n");
    const char *outs[] = { "ok", "failed", "client_error", "cancelled" };
    uint64_t vals[] = { r->req_ok, r->req_failed, r->req_client_error, r->req_cancelled };
    for (int i = 0; i < 4; i++)
        http_buf_printf(&b, "ponder_router_requests_total{outcome=\"%s\"} %llu\n", outs[i], (unsigned long long)vals[i]);
    http_buf_printf(&b, "# HELP ponder_router_fallbacks_total Requests answered by a backend after another failed.\n"
                        "# TYPE ponder_router_fallbacks_total counter\nponder_router_fallbacks_total %llu\n",
                    (unsigned long long)r->fallbacks);
    http_buf_printf(&b, "# HELP ponder_router_continuations_total Streams continued on another backend mid-answer.\n"
                        "# TYPE ponder_router_continuations_total counter\nponder_router_continuations_total %llu\n",
                    (unsigned long long)r->continuations);
    backend_counter(&b, r, "ponder_backend_attempts_total", "Requests sent to a backend.",
                    offsetof(rt_be, attempts));
    backend_counter(&b, r, "ponder_backend_successes_total", "Complete answers from a backend.",
                    offsetof(rt_be, successes));
    http_buf_printf(&b, "# HELP ponder_backend_failures_total Failed or skipped attempts by reason.\n"
                        "# TYPE ponder_backend_failures_total counter\n");
    for (int32_t i = 0; i < r->n_be; i++)
        for (int f = 1; f < PONDER_BACKEND_FAILURE_COUNT; f++)
            if (r->be[i].failures[f])
                http_buf_printf(&b, "ponder_backend_failures_total{backend=\"%s\",reason=\"%s\"} %llu\n",
                                r->be[i].cfg->name, ponder_backend_failure_name((ponder_backend_failure)f),
                                (unsigned long long)r->be[i].failures[f]);
    http_buf_printf(&b, "# HELP ponder_backend_circuit_state 0 closed, 1 open, 2 half-open (cooldown over).\n"
                        "# TYPE ponder_backend_circuit_state gauge\n");
    for (int32_t i = 0; i < r->n_be; i++) {
        rt_breaker st = r->be[i].br;
        if (st == BR_OPEN && now - r->be[i].opened_ms >= r->cfg->settings.breaker_cooldown_s * 1000)
            st = BR_HALF_OPEN;
        http_buf_printf(&b, "ponder_backend_circuit_state{backend=\"%s\",state=\"%s\"} %d\n", r->be[i].cfg->name,
                        breaker_names[st], (int)st);
    }
    backend_counter(&b, r, "ponder_backend_circuit_opens_total", "Times a backend's circuit opened.",
                    offsetof(rt_be, opens));
    http_buf_printf(&b, "# HELP ponder_backend_up 1 if the backend started (a local model loaded).\n"
                        "# TYPE ponder_backend_up gauge\n");
    for (int32_t i = 0; i < r->n_be; i++)
        http_buf_printf(&b, "ponder_backend_up{backend=\"%s\"} %d\n", r->be[i].cfg->name, r->be[i].b ? 1 : 0);
    rt_cascade_metrics(r->cascade, &b);
    pthread_mutex_unlock(&r->mu);
    if (b.oom) {
        free(b.data);
        return NULL;
    }
    return b.data;
}

/* ponder serve's metrics (its load gauges: requests in flight here; waiting requests and
 * sequences being decoded summed over the local backends' engines), then the router's. */
char *rt_metrics_text(ponder_router *r)
{
    int64_t queued = 0, sequences = 0, cp = 0, cc = 0;
    for (int32_t i = 0; i < r->n_be; i++) {
        int64_t q, a, s;
        if (ponder_backend_load(r->be[i].b, &q, &a, &s)) {
            queued += q;
            sequences += s;
        }
        if (ponder_backend_cancelled_tokens(r->be[i].b, &q, &a)) {
            cp += q;
            cc += a;
        }
    }
    /* a cancelled request's tokens are known only to its local engine (the router saw no
     * usage): what they counted since the last look is added to the token totals */
    pthread_mutex_lock(&r->mu);
    int64_t dp = cp - r->cancelled_prompt, dc = cc - r->cancelled_completion;
    r->cancelled_prompt = cp;
    r->cancelled_completion = cc;
    pthread_mutex_unlock(&r->mu);
    if (dp > 0 || dc > 0)
        http_metrics_add_tokens(&r->metrics, dp, dc);
    http_metrics_set_load(&r->metrics, queued, r->front ? http_front_inflight(r->front) : 0, sequences);
    char *a = http_metrics_render(&r->metrics), *b = render_metrics(r);
    char *out = NULL;
    if (a && b && (out = malloc(strlen(a) + strlen(b) + 1))) {
        strcpy(out, a);
        strcat(out, b);
    }
    free(a);
    free(b);
    return out;
}

