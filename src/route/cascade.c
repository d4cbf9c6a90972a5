/*
 * cascade.c — requests for a cascade route (`routes: NAME: {cascade: [...]}`, docs/config.md).
 *
 * Each stage is one non-streaming request through the router's chain walking for the
 * stage's model (its own backends and fallbacks, retries, breakers), with the stage's
 * strategy in the body's "ponder" object. The answer's ponder object (ponder serve's)
 * gives the confidence signals: the vote's agreement and the winning chains' mean token
 * log-probability. The stage's accept_if decides; the last stage always answers. If a
 * later stage fails entirely, the latest answered-but-rejected stage answers rather than
 * nobody (Plan B), and the ponder object says so.
 *
 * Streaming clients get the accepted answer as one stream after the decision: a stage-1
 * answer cannot be shown before it is judged, or a rejected answer would already be on
 * the client's screen. The stream is role chunk, one content chunk, the finish chunk
 * (with the ponder object unless include_usage), the usage chunk, [DONE].
 */
#include "route/cascade_internal.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ponder/json.h" /* ponder_json_dumps: shortest round-trip numbers */

/* ---- counters ---- */

typedef struct cs_stage {
    uint64_t calls, answered, escalated, prompt_tokens, completion_tokens;
    double flops, cost_usd, seconds;
} cs_stage;

typedef struct cs_route {
    const ponder_route_cfg *route;
    cs_stage *stages;
    uint64_t failed;
} cs_route;

struct rt_cascade_stats {
    pthread_mutex_t mu;
    cs_route *routes;
    int32_t n_routes;
};

rt_cascade_stats *rt_cascade_stats_create(const ponder_route_config *cfg)
{
    rt_cascade_stats *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    pthread_mutex_init(&s->mu, NULL);
    int32_t n = 0;
    for (int32_t i = 0; i < cfg->n_routes; i++)
        n += cfg->routes[i].n_stages > 0;
    if (n && !(s->routes = calloc((size_t)n, sizeof *s->routes))) {
        rt_cascade_stats_free(s);
        return NULL;
    }
    for (int32_t i = 0; i < cfg->n_routes; i++) {
        const ponder_route_cfg *r = &cfg->routes[i];
        if (!r->n_stages)
            continue;
        cs_route *cr = &s->routes[s->n_routes++];
        cr->route = r;
        if (!(cr->stages = calloc((size_t)r->n_stages, sizeof *cr->stages))) {
            rt_cascade_stats_free(s);
            return NULL;
        }
    }
    return s;
}

void rt_cascade_stats_free(rt_cascade_stats *s)
{
    if (!s)
        return;
    for (int32_t i = 0; i < s->n_routes; i++)
        free(s->routes[i].stages);
    free(s->routes);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static cs_route *stats_of(rt_cascade_stats *s, const ponder_route_cfg *route)
{
    for (int32_t i = 0; s && i < s->n_routes; i++)
        if (s->routes[i].route == route)
            return &s->routes[i];
    return NULL;
}

void rt_cascade_metrics(rt_cascade_stats *s, http_buf *b)
{
    if (!s || !s->n_routes)
        return;
    pthread_mutex_lock(&s->mu);
    static const struct {
        const char *name, *help, *type;
    } m[] = {
        { "ponder_cascade_requests_total", "Cascade requests answered, by the stage that answered (1: System 1).", "counter" },
        { "ponder_cascade_escalations_total", "Cascade requests a stage passed on to the next (its confidence was below accept_if, or it failed).", "counter" },
        { "ponder_cascade_stage_calls_total", "Requests sent to a cascade stage.", "counter" },
        { "ponder_cascade_stage_flops_total", "FLOPs spent by a cascade stage (the backends' count).", "counter" },
        { "ponder_cascade_stage_cost_usd_total", "Dollars spent by a cascade stage (tokens x the model's prices).", "counter" },
        { "ponder_cascade_stage_seconds_total", "Wall time of a cascade stage's calls.", "counter" },
        { "ponder_cascade_stage_tokens_total", "Tokens of a cascade stage's calls by kind.", "counter" },
    };
    for (size_t k = 0; k < sizeof m / sizeof m[0]; k++) {
        http_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", m[k].name, m[k].help, m[k].name, m[k].type);
        for (int32_t i = 0; i < s->n_routes; i++) {
            const cs_route *cr = &s->routes[i];
            for (int32_t j = 0; j < cr->route->n_stages; j++) {
                const cs_stage *st = &cr->stages[j];
                const char *rn = cr->route->name;
                switch (k) {
                case 0: http_buf_printf(b, "%s{route=\"%s\",stage=\"%d\"} %llu\n", m[k].name, rn, (int)j + 1, (unsigned long long)st->answered); break;
                case 1:
                    if (j + 1 < cr->route->n_stages)
                        http_buf_printf(b, "%s{route=\"%s\",stage=\"%d\"} %llu\n", m[k].name, rn, (int)j + 1, (unsigned long long)st->escalated);
                    break;
                case 2: http_buf_printf(b, "%s{route=\"%s\",stage=\"%d\"} %llu\n", m[k].name, rn, (int)j + 1, (unsigned long long)st->calls); break;
                case 3: http_buf_printf(b, "%s{route=\"%s\",stage=\"%d\"} %.17g\n", m[k].name, rn, (int)j + 1, st->flops); break;
                case 4: http_buf_printf(b, "%s{route=\"%s\",stage=\"%d\"} %.9g\n", m[k].name, rn, (int)j + 1, st->cost_usd); break;
                case 5: http_buf_printf(b, "%s{route=\"%s\",stage=\"%d\"} %.6f\n", m[k].name, rn, (int)j + 1, st->seconds); break;
                default:
                    http_buf_printf(b, "%s{route=\"%s\",stage=\"%d\",kind=\"prompt\"} %llu\n", m[k].name, rn, (int)j + 1, (unsigned long long)st->prompt_tokens);
                    http_buf_printf(b, "%s{route=\"%s\",stage=\"%d\",kind=\"completion\"} %llu\n", m[k].name, rn, (int)j + 1, (unsigned long long)st->completion_tokens);
                }
            }
        }
    }
    http_buf_printf(b, "# HELP ponder_cascade_failed_total Cascade requests no stage answered.\n"
                       "# TYPE ponder_cascade_failed_total counter\n");
    for (int32_t i = 0; i < s->n_routes; i++)
        http_buf_printf(b, "ponder_cascade_failed_total{route=\"%s\"} %llu\n", s->routes[i].route->name,
                        (unsigned long long)s->routes[i].failed);
    pthread_mutex_unlock(&s->mu);
}

/* ---- one stage ---- */

/* The body a stage's model gets: the client's request, not streamed, with the stage's
 * strategy. "direct" goes as one cot chain without its cue — the prompt as given — so the
 * server reports the chain's answer and log-probability (a plain request reports neither). */
static json_t *stage_body(const ponder_route_stage_cfg *st, const json_t *client)
{
    json_t *b = json_deep_copy(client);
    if (!b)
        return NULL;
    json_object_del(b, "stream");
    json_object_del(b, "stream_options");
    json_object_set_new(b, "model", json_string(st->model));
    ponder_strategy strat = { PONDER_THINK_COT, 1 };
    ponder_strategy_parse(st->strategy, &strat, NULL); /* checked by the config */
    bool direct = strat.kind == PONDER_THINK_DIRECT;
    json_t *po = json_object();
    json_t *cpo = json_object_get(client, "ponder");
    json_t *ans = json_object_get(cpo, "answer"); /* the client's answer kind is kept */
    if (json_is_string(ans))
        json_object_set(po, "answer", ans);
    json_object_set_new(po, "strategy", json_string(direct ? "cot" : st->strategy));
    if (direct || !st->cue)
        json_object_set_new(po, "cue", json_false());
    json_object_set_new(b, "ponder", po);
    if (st->temperature >= 0)
        json_object_set_new(b, "temperature", json_real(st->temperature));
    else if (!json_is_number(json_object_get(client, "temperature"))) /* think's default for the stage's strategy */
        json_object_set_new(b, "temperature", json_real(ponder_strategy_default_temp(&strat)));
    return b;
}

static int64_t int_at(const json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

/* Signals and accounting from a stage's answer (the router's ponder object around ponder
 * serve's, under "upstream"). */
static void read_stage(json_t *resp, ponder_cascade_stage_result *res)
{
    res->sig.mean_logprob = -HUGE_VAL;
    json_t *rp = json_object_get(resp, "ponder");
    json_t *up = json_object_get(rp, "upstream");
    const char *be = json_string_value(json_object_get(rp, "backend"));
    const char *mo = json_string_value(json_object_get(rp, "model"));
    snprintf(res->backend, sizeof res->backend, "%s", be ? be : "");
    snprintf(res->model, sizeof res->model, "%s", mo ? mo : "");
    json_t *cost = json_object_get(rp, "cost_usd");
    res->cost_usd = json_is_number(cost) ? json_number_value(cost) : 0;
    json_t *u = json_object_get(resp, "usage");
    res->prompt_tokens = int_at(u, "prompt_tokens");
    res->completion_tokens = int_at(u, "completion_tokens");
    res->prompt_tokens_evaluated = int_at(up, "prompt_tokens_evaluated");
    int64_t fl = int_at(up, "flops");
    res->flops = fl > 0 ? (uint64_t)fl : 0;
    const char *answer = json_string_value(json_object_get(up, "answer"));
    if (answer) {
        res->sig.answered = true;
        snprintf(res->sig.answer, sizeof res->sig.answer, "%s", answer);
    }
    json_t *ag = json_object_get(up, "agreement");
    res->sig.agreement = json_is_number(ag) ? json_number_value(ag) : 0;
    json_t *chains = json_object_get(up, "chains");
    double sum = 0, sum_all = 0;
    int n = 0, n_all = 0;
    size_t i;
    json_t *c;
    json_array_foreach(chains, i, c) {
        json_t *lp = json_object_get(c, "mean_logprob");
        if (!json_is_number(lp))
            continue;
        double v = json_number_value(lp);
        sum_all += v;
        n_all++;
        const char *ca = json_string_value(json_object_get(c, "answer"));
        if (answer && ca && !strcmp(ca, answer)) {
            sum += v;
            n++;
        }
    }
    if (n)
        res->sig.mean_logprob = sum / n;
    else if (n_all)
        res->sig.mean_logprob = sum_all / n_all;
}

/* Runs stage `si` of route for the client's body; *resp_out (may be NULL) gets the
 * stage's response JSON. */
static void run_stage(ponder_router *r, const ponder_route_cfg *route, int32_t si, ponder_backend_endpoint ep,
                      const json_t *client, ponder_cascade_stage_result *res, json_t **resp_out,
                      double *retry_after_s)
{
    memset(res, 0, sizeof *res);
    res->sig.mean_logprob = -HUGE_VAL;
    const ponder_route_stage_cfg *st = &route->stages[si];
    json_t *body = stage_body(st, client);
    json_t *resp = NULL;
    double t0 = http_now_ms();
    res->http_status = body ? rt_route_call(r, st->model, ep, body, &resp, retry_after_s) : 500;
    res->wall_ms = http_now_ms() - t0;
    json_decref(body);
    if (resp && res->http_status == 200)
        read_stage(resp, res);
    rt_cascade_stats *stats = rt_router_cascade_stats(r);
    cs_route *cr = stats_of(stats, route);
    if (cr) {
        pthread_mutex_lock(&stats->mu);
        cs_stage *cs = &cr->stages[si];
        cs->calls++;
        cs->flops += (double)res->flops;
        cs->cost_usd += res->cost_usd;
        cs->seconds += res->wall_ms / 1000;
        cs->prompt_tokens += (uint64_t)(res->prompt_tokens > 0 ? res->prompt_tokens : 0);
        cs->completion_tokens += (uint64_t)(res->completion_tokens > 0 ? res->completion_tokens : 0);
        pthread_mutex_unlock(&stats->mu);
    }
    if (resp_out)
        *resp_out = resp;
    else
        json_decref(resp);
}

static const ponder_route_cfg *cascade_named(const ponder_router *r, const char *name)
{
    const ponder_route_config *cfg = rt_router_config(r);
    for (int32_t i = 0; name && i < cfg->n_routes; i++)
        if (!strcmp(cfg->routes[i].name, name) && cfg->routes[i].n_stages > 0)
            return &cfg->routes[i];
    return NULL;
}

ponder_status ponder_cascade_stage_call(ponder_router *r, const char *route_name, int32_t stage,
                                        ponder_backend_endpoint ep, const char *body, size_t body_len,
                                        ponder_cascade_stage_result *out, ponder_error *err)
{
    memset(out, 0, sizeof *out);
    const ponder_route_cfg *route = cascade_named(r, route_name);
    if (!route)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "'%s' is not a cascade route of the config",
                                route_name ? route_name : "(null)");
    if (stage < 0 || stage >= route->n_stages)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "cascade '%s' has no stage %d (it has %d)", route->name,
                                (int)stage + 1, (int)route->n_stages);
    json_error_t jerr;
    json_t *client = json_loadb(body, body_len, 0, &jerr);
    if (!json_is_object(client)) {
        json_decref(client);
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "the request body is not a JSON object: %s", jerr.text);
    }
    json_t *resp = NULL;
    double ra = 0;
    run_stage(r, route, stage, ep, client, out, &resp, &ra);
    json_decref(client);
    out->response = resp ? ponder_json_dumps(resp) : NULL;
    json_decref(resp);
    if (!out->response)
        return ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory");
    return PONDER_OK;
}

void ponder_cascade_stage_result_clear(ponder_cascade_stage_result *res)
{
    if (!res)
        return;
    free(res->response);
    memset(res, 0, sizeof *res);
}

/* ---- the whole request ---- */

static json_t *num_or_null(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static json_t *stage_json(const ponder_route_cfg *route, int32_t si, const ponder_cascade_stage_result *res,
                          const json_t *resp, bool accepted, const char *why)
{
    const ponder_route_stage_cfg *st = &route->stages[si];
    json_t *o = json_object();
    json_object_set_new(o, "stage", json_integer(si + 1));
    json_object_set_new(o, "model", json_string(st->model));
    json_object_set_new(o, "strategy", json_string(st->strategy));
    json_object_set_new(o, "outcome", json_string(res->http_status != 200 ? "failed" : accepted ? "accepted" : "escalated"));
    json_object_set_new(o, "reason", json_string(why));
    json_object_set_new(o, "http_status", json_integer(res->http_status));
    json_object_set_new(o, "backend", res->backend[0] ? json_string(res->backend) : json_null());
    json_object_set_new(o, "answer", res->sig.answered ? http_json_string_lossy(res->sig.answer, strlen(res->sig.answer)) : json_null());
    json_object_set_new(o, "agreement", json_real(res->sig.agreement));
    json_object_set_new(o, "mean_logprob", num_or_null(res->sig.mean_logprob));
    json_object_set_new(o, "prompt_tokens", json_integer(res->prompt_tokens));
    json_object_set_new(o, "completion_tokens", json_integer(res->completion_tokens));
    json_object_set_new(o, "prompt_tokens_evaluated", json_integer(res->prompt_tokens_evaluated));
    json_object_set_new(o, "flops", json_integer((json_int_t)(res->flops > (uint64_t)INT64_MAX ? INT64_MAX : res->flops)));
    json_object_set_new(o, "wall_ms", json_real(round(res->wall_ms * 10) / 10));
    json_object_set_new(o, "cost_usd", json_real(res->cost_usd));
    json_t *rp = json_object_get(resp, "ponder");
    json_t *att = json_object_get(rp, "attempts");
    if (att)
        json_object_set(o, "attempts", att);
    json_t *err = json_object_get(resp, "error");
    if (res->http_status != 200 && json_is_object(err))
        json_object_set(o, "error", json_object_get(err, "message"));
    return o;
}

/* The whole answer as the SSE text of a stream: role, content, finish (+ ponder), usage. */
static char *as_stream(json_t *resp, ponder_backend_endpoint ep, bool include_usage)
{
    bool chat = ep == PONDER_BACKEND_CHAT;
    json_t *choice = json_array_get(json_object_get(resp, "choices"), 0);
    json_t *text = chat ? json_object_get(json_object_get(choice, "message"), "content") : json_object_get(choice, "text");
    json_t *fr = json_object_get(choice, "finish_reason");
    json_t *pond = json_object_get(resp, "ponder");
    http_buf b = { 0 };
    const char *obj = chat ? "chat.completion.chunk" : "text_completion";
    json_t *base = json_object();
    const char *keys[] = { "id", "created", "model", "system_fingerprint" };
    for (size_t k = 0; k < 4; k++)
        if (json_object_get(resp, keys[k]))
            json_object_set(base, keys[k], json_object_get(resp, keys[k]));
    json_object_set_new(base, "object", json_string(obj));
    for (int part = 0; part < 3; part++) {
        if (part == 0 && !chat)
            continue;
        json_t *c = json_deep_copy(base);
        json_t *ch = json_object();
        json_object_set_new(ch, "index", json_integer(0));
        if (chat) {
            json_t *d = json_object();
            if (part == 0) {
                json_object_set_new(d, "role", json_string("assistant"));
                json_object_set_new(d, "content", json_string(""));
            } else if (part == 1) {
                json_object_set_new(d, "content", json_is_string(text) ? json_incref(text) : json_string(""));
            }
            json_object_set_new(ch, "delta", d);
        } else {
            json_object_set_new(ch, "text", part == 1 && json_is_string(text) ? json_incref(text) : json_string(""));
        }
        json_object_set_new(ch, "logprobs", json_null());
        json_object_set(ch, "finish_reason", part == 2 && fr ? fr : json_null());
        json_object_set_new(c, "choices", json_pack("[o]", ch));
        if (part == 2 && !include_usage && pond)
            json_object_set(c, "ponder", pond);
        if (include_usage)
            json_object_set_new(c, "usage", json_null());
        char *s = ponder_json_dumps(c);
        json_decref(c);
        if (s)
            http_buf_printf(&b, "data: %s\n\n", s);
        free(s);
    }
    if (include_usage) {
        json_t *c = json_deep_copy(base);
        json_object_set_new(c, "choices", json_array());
        json_object_set(c, "usage", json_object_get(resp, "usage") ? json_object_get(resp, "usage") : json_null());
        if (pond)
            json_object_set(c, "ponder", pond);
        char *s = ponder_json_dumps(c);
        json_decref(c);
        if (s)
            http_buf_printf(&b, "data: %s\n\n", s);
        free(s);
    }
    json_decref(base);
    http_buf_printf(&b, "data: [DONE]\n\n");
    if (b.oom) {
        free(b.data);
        return NULL;
    }
    return b.data;
}

int rt_cascade_request(ponder_router *r, const ponder_route_cfg *route, ponder_backend_endpoint ep, json_t *body,
                       char **out, bool *sse, double *retry_after_s)
{
    *out = NULL;
    *sse = false;
    bool stream = json_is_true(json_object_get(body, "stream"));
    bool include_usage = stream && json_is_true(json_object_get(json_object_get(body, "stream_options"), "include_usage"));
    json_t *stages = json_array();
    json_t *answer = NULL, *fallback = NULL; /* the accepted response; the latest rejected one */
    int32_t answered = -1, fallback_stage = -1;
    int status = 503;
    json_t *last_error = NULL;
    double t0 = http_now_ms();
    int64_t ptok = 0, ctok = 0, pev = 0;
    double flops = 0, cost = 0;
    char why[256];
    for (int32_t si = 0; si < route->n_stages; si++) {
        bool last = si == route->n_stages - 1;
        ponder_cascade_stage_result res;
        json_t *resp = NULL;
        run_stage(r, route, si, ep, body, &res, &resp, retry_after_s);
        ptok += res.prompt_tokens;
        ctok += res.completion_tokens;
        pev += res.prompt_tokens_evaluated;
        flops += (double)res.flops;
        cost += res.cost_usd;
        if (res.http_status != 200) {
            json_t *m = json_object_get(json_object_get(resp, "error"), "message");
            snprintf(why, sizeof why, "stage failed (HTTP %d): %.200s", res.http_status,
                     json_is_string(m) ? json_string_value(m) : "no answer");
            json_array_append_new(stages, stage_json(route, si, &res, resp, false, why));
            status = res.http_status;
            json_decref(last_error);
            last_error = resp;
            /* the request itself refused (400 …): every stage would refuse it */
            if (res.http_status >= 400 && res.http_status < 500 && res.http_status != 429)
                break;
            continue;
        }
        bool ok = ponder_cascade_accept(&route->stages[si], last, &res.sig, why, sizeof why);
        json_array_append_new(stages, stage_json(route, si, &res, resp, ok, why));
        if (ok) {
            answer = resp;
            answered = si;
            break;
        }
        json_decref(fallback);
        fallback = resp;
        fallback_stage = si;
    }
    bool plan_b = false;
    if (!answer && fallback && !(status >= 400 && status < 500 && status != 429)) {
        /* the later stages failed: a rejected answer beats none */
        answer = fallback;
        fallback = NULL;
        answered = fallback_stage;
        plan_b = true;
    }
    json_decref(fallback);
    rt_cascade_stats *stats = rt_router_cascade_stats(r);
    cs_route *cr = stats_of(stats, route);
    if (cr) {
        pthread_mutex_lock(&stats->mu);
        size_t n = json_array_size(stages);
        for (size_t i = 0; i + 1 < n; i++) /* every stage another one followed */
            cr->stages[i].escalated++;
        if (answered >= 0)
            cr->stages[answered].answered++;
        else
            cr->failed++;
        pthread_mutex_unlock(&stats->mu);
    }
    json_t *pond = json_object();
    json_object_set_new(pond, "route", json_string(route->name));
    json_object_set_new(pond, "cascade", json_true());
    json_object_set_new(pond, "stage", answered >= 0 ? json_integer(answered + 1) : json_null());
    json_object_set_new(pond, "model", answered >= 0 ? json_string(route->stages[answered].model) : json_null());
    json_t *ast = answered >= 0 ? json_array_get(stages, (size_t)answered) : NULL;
    json_object_set(pond, "backend", ast ? json_object_get(ast, "backend") : json_null());
    json_object_set_new(pond, "escalated", json_boolean(json_array_size(stages) > 1)); /* Plan B too */
    if (plan_b) {
        snprintf(why, sizeof why, "the later stages failed; stage %d's answer below its threshold is returned",
                 (int)answered + 1);
        json_object_set_new(pond, "reason", json_string(why));
    } else {
        json_object_set_new(pond, "reason", ast ? json_incref(json_object_get(ast, "reason")) : json_string("no stage answered"));
    }
    json_object_set_new(pond, "stages", stages);
    json_object_set_new(pond, "total",
                        json_pack("{s:I,s:I,s:I,s:I,s:f,s:f}", "prompt_tokens", (json_int_t)ptok, "completion_tokens",
                                  (json_int_t)ctok, "prompt_tokens_evaluated", (json_int_t)pev, "flops",
                                  (json_int_t)(flops < 9.2e18 ? flops : 9.2e18),
                                  "wall_ms", round((http_now_ms() - t0) * 10) / 10, "cost_usd", cost));
    json_t *final = answer ? answer : last_error;
    if (!final) {
        /* nothing at all came back (out of memory on the way): an error of our own */
        final = json_pack("{s:{s:s,s:s,s:n,s:n}}", "error", "message", "No stage of the cascade answered.", "type",
                          "server_error", "param", "code");
        status = 503;
    } else if (answer) {
        status = 200;
        /* usage is the request's whole spend: every stage's tokens */
        json_object_set_new(final, "usage", json_pack("{s:I,s:I,s:I}", "prompt_tokens", (json_int_t)ptok,
                                                      "completion_tokens", (json_int_t)ctok, "total_tokens",
                                                      (json_int_t)(ptok + ctok)));
        json_object_set_new(final, "model", json_string(route->name));
    } else {
        json_incref(final);
    }
    json_object_set_new(final, "ponder", pond);
    if (status == 200 && stream) {
        *out = as_stream(final, ep, include_usage);
        *sse = true;
    } else {
        *out = ponder_json_dumps(final);
    }
    json_decref(final);
    json_decref(last_error);
    if (!*out)
        status = 500;
    return status;
}
