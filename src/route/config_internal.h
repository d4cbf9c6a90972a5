/*
 * config_internal.h — what the config's files share: the parse context (errors are
 * collected, so one run names every bad key; warnings name LiteLLM keys that mean nothing
 * here), typed getters that name the key path and line, and the loops over YAML nodes.
 * config.c reads Ponder's own keys; config_litellm.c LiteLLM's sections.
 */
#ifndef PONDER_ROUTE_CONFIG_INTERNAL_H
#define PONDER_ROUTE_CONFIG_INTERNAL_H

#include "ponder/route.h"

#include <yaml.h>

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CFG_DEFAULT_TIMEOUT_S 600.0
#define CFG_DEFAULT_CONNECT_TIMEOUT_S 5.0
#define CFG_DEFAULT_FIRST_TOKEN_TIMEOUT_S 60.0
#define CFG_KEY_BYTES 160

typedef struct cfg_ctx {
    yaml_document_t *doc;
    const char *source;
    const char *dir;
    ponder_error *err;         /* the first error */
    int n_errors;              /* errors so far: parsing goes on to report them all */
    ponder_route_config_note_fn note; /* each error and warning line; NULL: none */
    void *note_user;
} cfg_ctx;

static inline int line_of(const yaml_node_t *n) { return n ? (int)n->start_mark.line + 1 : 0; }

static inline ponder_status bad(cfg_ctx *c, const yaml_node_t *n, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static inline void warn(cfg_ctx *c, const yaml_node_t *n, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static inline ponder_status bad(cfg_ctx *c, const yaml_node_t *n, const char *key, const char *fmt, ...)
{
    char msg[PONDER_ERROR_MSG_BYTES], line[PONDER_ERROR_MSG_BYTES + 256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(line, sizeof line, "%s:%d: %s: %s", c->source, line_of(n), key, msg);
    if (c->n_errors++ == 0)
        ponder_error_set(c->err, PONDER_ERR_FORMAT, "%s", line);
    if (c->note)
        c->note(c->note_user, true, line);
    return PONDER_ERR_FORMAT;
}

/* A key LiteLLM has that means nothing here: accepted, and said once. */
static inline void warn(cfg_ctx *c, const yaml_node_t *n, const char *key, const char *fmt, ...)
{
    char msg[PONDER_ERROR_MSG_BYTES], line[PONDER_ERROR_MSG_BYTES + 256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(line, sizeof line, "%s:%d: %s: %s", c->source, line_of(n), key, msg);
    if (c->note)
        c->note(c->note_user, false, line);
}

static inline const char *scalar(const yaml_node_t *n) { return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL; }

static inline ponder_status want_type(cfg_ctx *c, const yaml_node_t *n, yaml_node_type_t t, const char *key)
{
    static const char *const names[] = { "nothing", "a single value", "a list", "a mapping" };
    if (n && n->type == t && t == YAML_MAPPING_NODE) {
        /* a key given twice: YAML keeps both and one would silently win */
        const ponder_status st = PONDER_OK;
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++)
            for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < p; q++) {
                const yaml_node_t *a = yaml_document_get_node(c->doc, p->key), *b = yaml_document_get_node(c->doc, q->key);
                if (scalar(a) && scalar(b) && !strcmp(scalar(a), scalar(b))) {
                    char sub[CFG_KEY_BYTES + 96];
                    snprintf(sub, sizeof sub, "%.*s.%.80s", CFG_KEY_BYTES, key, scalar(a));
                    bad(c, a, sub, "given twice (also line %d)", line_of(b)); /* counted; parsing goes on */
                    break;
                }
            }
        return st;
    }
    if (n && n->type == t)
        return PONDER_OK;
    return bad(c, n, key, "expected %s, found %s", names[t], n ? names[n->type] : "nothing");
}

static inline ponder_status get_string(cfg_ctx *c, const yaml_node_t *n, const char *key, char **out)
{
    ponder_status st = want_type(c, n, YAML_SCALAR_NODE, key);
    if (st)
        return st;
    const char *v = scalar(n);
    if (!v[0])
        return bad(c, n, key, "must not be empty");
    free(*out);
    *out = strdup(v);
    return *out ? PONDER_OK : ponder_error_set(c->err, PONDER_ERR_NOMEM, "out of memory");
}

static inline ponder_status get_number(cfg_ctx *c, const yaml_node_t *n, const char *key, double lo, double hi, double *out)
{
    ponder_status st = want_type(c, n, YAML_SCALAR_NODE, key);
    if (st)
        return st;
    const char *v = scalar(n);
    char *end = NULL;
    errno = 0;
    double d = strtod(v, &end);
    if (!v[0] || end == v || *end || errno || !isfinite(d))
        return bad(c, n, key, "expected a number, found '%s'", v);
    if (d < lo || d > hi)
        return bad(c, n, key, "%s is out of range [%g, %g]", v, lo, hi);
    *out = d;
    return PONDER_OK;
}

static inline ponder_status get_int(cfg_ctx *c, const yaml_node_t *n, const char *key, int32_t lo, int32_t hi, int32_t *out)
{
    double d = 0;
    ponder_status st = get_number(c, n, key, lo, hi, &d);
    if (st)
        return st;
    if (d != floor(d))
        return bad(c, n, key, "expected a whole number, found '%s'", scalar(n));
    *out = (int32_t)d;
    return PONDER_OK;
}

static inline bool strv_push(char ***v, int32_t *n, const char *s)
{
    char **nv = realloc(*v, (size_t)(*n + 1) * sizeof *nv);
    if (!nv)
        return false;
    *v = nv;
    if (!(nv[*n] = strdup(s)))
        return false;
    (*n)++;
    return true;
}

/* Iterates a mapping's pairs: for each, *k is the key text and kn/vn the nodes. */
#define FOR_PAIRS(c, map, kn, vn, k)                                                                             \
    for (yaml_node_pair_t *p_ = (map)->data.mapping.pairs.start; p_ < (map)->data.mapping.pairs.top; p_++)      \
        for (int once_ = 1; once_;)                                                                              \
            for (yaml_node_t *kn = yaml_document_get_node((c)->doc, p_->key),                                   \
                             *vn = yaml_document_get_node((c)->doc, p_->value);                                 \
                 once_; once_ = 0)                                                                               \
                for (const char *k = scalar(kn) ? scalar(kn) : ""; once_; once_ = 0)

#define FOR_ITEMS(c, seq, i, item)                                                                               \
    for (yaml_node_item_t *it_ = (seq)->data.sequence.items.start; it_ < (seq)->data.sequence.items.top; it_++) \
        for (int once_ = 1, i = (int)(it_ - (seq)->data.sequence.items.start); once_;)                          \
            for (yaml_node_t *item = yaml_document_get_node((c)->doc, *it_); once_; once_ = 0)

/* Inside a loop over entries: an entry's error is counted (bad() said it) and the loop goes
 * on, so one run reports every error of the file; only running out of memory stops it. */
#define SOFT(x)                                                                                                  \
    do {                                                                                                         \
        ponder_status st_ = (x);                                                                                 \
        if (st_ == PONDER_ERR_NOMEM)                                                                             \
            return st_;                                                                                          \
    } while (0)

#define TRY(x)                                                                                                   \
    do {                                                                                                         \
        ponder_status st_ = (x);                                                                                 \
        if (st_ != PONDER_OK)                                                                                    \
            return st_;                                                                                          \
    } while (0)

static inline bool is_env_name(const char *s)
{
    if (!s[0] || isdigit((unsigned char)s[0]))
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_')
            return false;
    return true;
}

static inline ponder_route_model_cfg *model_named(ponder_route_config *cfg, const char *name)
{
    for (int32_t i = 0; i < cfg->n_models; i++)
        if (!strcmp(cfg->models[i].name, name))
            return &cfg->models[i];
    return NULL;
}

/* LiteLLM's sections (config_litellm.c). */
ponder_status cfg_litellm_settings(cfg_ctx *c, ponder_route_config *cfg, const yaml_node_t *n);
ponder_status cfg_general_settings(cfg_ctx *c, ponder_route_config *cfg, const yaml_node_t *n);
/* router_settings keys LiteLLM has (routing_strategy, timeout, fallbacks, …): true when k
 * was one of them (handled, or an error said), false when it is not LiteLLM's either. */
bool cfg_router_litellm_key(cfg_ctx *c, ponder_route_config *cfg, const yaml_node_t *kn, const yaml_node_t *vn,
                            const char *k);
/* litellm_params keys beyond Ponder's backend keys (rpm, tpm, weight, order, stream_timeout,
 * the provider prefix of model, …): true when handled. */
bool cfg_backend_litellm_key(cfg_ctx *c, ponder_route_model_cfg *m, ponder_route_backend_cfg *b,
                             const yaml_node_t *kn, const yaml_node_t *vn, const char *k, const char *key);
/* After an entry's keys, for LiteLLM-form entries: the provider prefix, OpenAI's base URL
 * (and OPENAI_API_KEY) when none is given; *remote set when a base URL was filled in. */
ponder_status cfg_litellm_backend_done(cfg_ctx *c, ponder_route_backend_cfg *b, const yaml_node_t *n,
                                       const char *key, bool *remote);
/* After every section: fallbacks into routes, provider defaults, timeouts not given. */
ponder_status cfg_litellm_finish(cfg_ctx *c, ponder_route_config *cfg);
/* A fallback chain route NAME: [NAME, …list]; NULL on error (said). */
ponder_route_cfg *cfg_add_route(cfg_ctx *c, ponder_route_config *cfg, const char *name, const yaml_node_t *at,
                                const char *key);

#endif /* PONDER_ROUTE_CONFIG_INTERNAL_H */
