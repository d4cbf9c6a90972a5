/*
 * route_fuzz.c — libFuzzer harness for the router's two parsers. The first byte picks:
 *   even: the rest is a `ponder serve --config` YAML file. A refusal has a
 *         "(fuzz):LINE: KEY: ..." message; an accepted config is internally consistent
 *         (every model has backends, local ones a path, remote ones an http(s) URL, names
 *         unique, every route's chain names models).
 *   odd:  the rest is an SSE byte stream, fed once whole and once cut at points taken from
 *         the input itself; both must give the same events.
 */
#include "route/route_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)      \
    do {                 \
        if (!(cond))     \
            abort();     \
    } while (0)

static void check_config(const char *text, size_t n)
{
    ponder_route_config *c = NULL;
    ponder_error err;
    if (ponder_route_config_parse(text, n, "(fuzz)", NULL, &c, &err) != PONDER_OK) {
        CHECK(c == NULL);
        CHECK(strncmp(err.msg, "(fuzz):", 7) == 0 || strstr(err.msg, "out of memory"));
        return;
    }
    CHECK(c && c->n_models >= 1);
    for (int32_t i = 0; i < c->n_models; i++) {
        const ponder_route_model_cfg *m = &c->models[i];
        CHECK(m->name && m->name[0] && m->n_backends >= 1);
        CHECK(m->price_input_per_1m >= 0 && m->price_output_per_1m >= 0);
        for (int32_t j = 0; j < m->n_backends; j++) {
            const ponder_route_backend_cfg *b = &m->backends[j];
            CHECK(b->name && b->name[0]);
            if (b->kind == PONDER_BACKEND_LOCAL)
                CHECK(b->path && !b->api_base && !b->api_key_env);
            else
                CHECK(b->api_base && !b->path &&
                      (!strncmp(b->api_base, "http://", 7) || !strncmp(b->api_base, "https://", 8)));
            CHECK(b->timeout_s > 0 && b->connect_timeout_s > 0 && b->first_token_timeout_s > 0);
            for (int32_t k = 0; k < c->n_models; k++)
                for (int32_t l = 0; l < c->models[k].n_backends; l++)
                    CHECK((k == i && l == j) || strcmp(c->models[k].backends[l].name, b->name) != 0);
        }
    }
    for (int32_t i = 0; i < c->n_routes; i++) {
        CHECK(c->routes[i].n_chain >= 1);
        for (int32_t j = 0; j < c->routes[i].n_chain; j++)
            CHECK(ponder_route_config_model(c, c->routes[i].chain[j]) != NULL);
    }
    ponder_route_cfg scratch;
    CHECK(ponder_route_config_find(c, c->models[0].name, &scratch) != NULL);
    CHECK(c->settings.retry_backoff_max_ms >= c->settings.retry_backoff_ms);
    ponder_route_config_free(c);
}

typedef struct collected {
    char *data;
    size_t len, cap;
} collected;

static bool collect(const char *data, size_t len, void *user)
{
    collected *c = user;
    CHECK(data[len] == '\0');
    if (c->len + len + 1 > c->cap) {
        size_t cap = (c->len + len + 1) * 2;
        char *d = realloc(c->data, cap);
        CHECK(d);
        c->data = d;
        c->cap = cap;
    }
    memcpy(c->data + c->len, data, len);
    c->len += len;
    c->data[c->len++] = '\x1e'; /* an event separator no payload contains here */
    return true;
}

static void check_sse(const uint8_t *d, size_t n)
{
    collected whole = { 0 }, cut = { 0 };
    rt_sse p;
    rt_sse_init(&p);
    bool ok_whole = rt_sse_feed(&p, (const char *)d, n, collect, &whole);
    rt_sse_free(&p);
    rt_sse_init(&p);
    bool ok_cut = true;
    size_t pos = 0, step = n ? (size_t)d[0] % 7 + 1 : 1;
    while (pos < n && ok_cut) {
        size_t k = step < n - pos ? step : n - pos;
        ok_cut = rt_sse_feed(&p, (const char *)d + pos, k, collect, &cut);
        pos += k;
        step = (size_t)d[pos < n ? pos : 0] % 13 + 1;
    }
    rt_sse_free(&p);
    CHECK(ok_whole && ok_cut);
    CHECK(whole.len == cut.len && (whole.len == 0 || memcmp(whole.data, cut.data, whole.len) == 0));
    free(whole.data);
    free(cut.data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] % 2 == 0)
        check_config((const char *)data + 1, size - 1);
    else
        check_sse(data + 1, size - 1);
    return 0;
}
