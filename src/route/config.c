/*
 * config.c — the router's YAML file (docs/config.md) into a ponder_route_config.
 *
 * libyaml's document API gives every node its start mark, so each error names the key
 * path ("model_list[1].backends[0].timeout") and the line it is on. Unknown keys are
 * errors: a misspelt "fallbacks" silently ignored would be a fallback that never happens.
 */
#include "route/config_internal.h"
#include "route/route_internal.h"

#include "ponder/hub.h"
#include "ponder/think.h"

#include <strings.h>
#include <unistd.h>

ponder_route_settings ponder_route_settings_default(void)
{
    ponder_route_settings s;
    s.num_retries = 1;
    s.retry_backoff_ms = 100;
    s.retry_backoff_max_ms = 2000;
    s.retry_after_max_s = 5;
    s.breaker_failures = 3;
    s.breaker_cooldown_s = 30;
    s.balance = PONDER_BALANCE_ORDER;
    s.balance_given = false;
    s.timeout_s = -1;
    s.stream_timeout_s = -1;
    return s;
}

/* A KV cache type as -ctk/-ctv spell it: f16, f32, q8_0, q4_0 (any case). */
static ponder_status get_cache_type(cfg_ctx *c, const yaml_node_t *n, const char *key, ponder_type *out)
{
    static const struct { const char *name; ponder_type type; } types[] = {
        { "f16", PONDER_TYPE_F16 }, { "f32", PONDER_TYPE_F32 }, { "q8_0", PONDER_TYPE_Q8_0 }, { "q4_0", PONDER_TYPE_Q4_0 },
    };
    ponder_status st = want_type(c, n, YAML_SCALAR_NODE, key);
    if (st)
        return st;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (!strcasecmp(scalar(n), types[i].name)) {
            *out = types[i].type;
            return PONDER_OK;
        }
    return bad(c, n, key, "unsupported cache type '%s' (allowed: f16, f32, q8_0, q4_0)", scalar(n));
}



/* A mapping of numbers (price:, circuit_breaker:), each key with its range; an unknown
 * key is an error saying which keys there are (takes). */
typedef struct num_key {
    const char *name;
    double lo, hi;
    double *d;                    /* a number, or */
    int32_t *i;                   /* an integer */
} num_key;

static ponder_status get_numbers(cfg_ctx *c, const yaml_node_t *n, const char *key, const num_key *keys,
                                 size_t n_keys, const char *takes)
{
    TRY(want_type(c, n, YAML_MAPPING_NODE, key));
    FOR_PAIRS(c, n, kn, vn, k)
    {
        char sub[CFG_KEY_BYTES + 64];
        snprintf(sub, sizeof sub, "%s.%s", key, k);
        size_t i = 0;
        while (i < n_keys && strcmp(k, keys[i].name) != 0)
            i++;
        if (i == n_keys)
            return bad(c, kn, sub, "unknown key (%s)", takes);
        if (keys[i].d)
            TRY(get_number(c, vn, sub, keys[i].lo, keys[i].hi, keys[i].d));
        else
            TRY(get_int(c, vn, sub, (int32_t)keys[i].lo, (int32_t)keys[i].hi, keys[i].i));
    }
    return PONDER_OK;
}

static ponder_status resolve_path(cfg_ctx *c, char **path)
{
    /* A path is relative to the config file. A name that is no file there, as with -m:
     * a pulled model (hf.co/OWNER/REPO:QUANT, smollm2:135m, a file of $PONDER_MODELS). */
    char found[PONDER_HUB_PATH_BYTES];
    if ((*path)[0] == '/')
        return PONDER_OK;
    size_t n = strlen(c->dir ? c->dir : "") + strlen(*path) + 2;
    char *full = malloc(n);
    if (!full)
        return ponder_error_set(c->err, PONDER_ERR_NOMEM, "out of memory");
    if (c->dir && c->dir[0])
        snprintf(full, n, "%s/%s", c->dir, *path);
    else
        snprintf(full, n, "%s", *path);
    if (access(full, F_OK) != 0 && (ponder_hub_is_name(*path) || !strchr(*path, '/')) &&
        ponder_hub_find(*path, NULL, found, sizeof found, NULL) == PONDER_OK) {
        free(full);
        if (!(full = strdup(found)))
            return ponder_error_set(c->err, PONDER_ERR_NOMEM, "out of memory");
    }
    free(*path);
    *path = full;
    return PONDER_OK;
}


/* One backend mapping (also LiteLLM's litellm_params, which has the same keys). */
static ponder_status parse_backend(cfg_ctx *c, const yaml_node_t *n, const char *key, ponder_route_model_cfg *m,
                                   ponder_route_backend_cfg *b, bool litellm)
{
    TRY(want_type(c, n, YAML_MAPPING_NODE, key));
    b->line = line_of(n);
    b->timeout_s = -1; /* not given: router_settings' timeout, else the default (cfg_litellm_finish) */
    b->connect_timeout_s = CFG_DEFAULT_CONNECT_TIMEOUT_S;
    b->first_token_timeout_s = -1;
    bool local = false, remote = false;
    const yaml_node_t *where = n;
    char sub[CFG_KEY_BYTES + 32];
    FOR_PAIRS(c, n, kn, vn, k)
    {
        snprintf(sub, sizeof sub, "%s.%s", key, k);
        if (!strcmp(k, "local") || !strcmp(k, "path")) {
            if (local)
                return bad(c, kn, sub, "the model file is given twice (local: and path: are the same key)");
            TRY(get_string(c, vn, sub, &b->path));
            TRY(resolve_path(c, &b->path));
            local = true;
            where = kn;
        } else if (!strcmp(k, "api_base")) {
            TRY(get_string(c, vn, sub, &b->api_base));
            if (strncmp(b->api_base, "http://", 7) != 0 && strncmp(b->api_base, "https://", 8) != 0)
                return bad(c, vn, sub, "'%s' is not an http:// or https:// URL", b->api_base);
            size_t len = strlen(b->api_base);
            while (len > 8 && b->api_base[len - 1] == '/')
                b->api_base[--len] = '\0';
            remote = true;
            where = kn;
        } else if (!strcmp(k, "model")) {
            TRY(get_string(c, vn, sub, &b->model));
        } else if (!strcmp(k, "name")) {
            TRY(get_string(c, vn, sub, &b->name));
        } else if (!strcmp(k, "api_key_env")) {
            TRY(get_string(c, vn, sub, &b->api_key_env));
            if (!is_env_name(b->api_key_env))
                return bad(c, vn, sub, "'%s' is not an environment variable name", b->api_key_env);
        } else if (!strcmp(k, "api_key")) {
            /* LiteLLM's "os.environ/NAME" form names a variable; anything else is a secret
             * written in the file, which we refuse */
            const char *v = scalar(vn);
            if (v && !strncmp(v, "os.environ/", 11) && is_env_name(v + 11)) {
                free(b->api_key_env);
                if (!(b->api_key_env = strdup(v + 11)))
                    return ponder_error_set(c->err, PONDER_ERR_NOMEM, "out of memory");
            } else {
                return bad(c, kn, sub,
                           "API keys must not be written in the config file; put the key in an environment "
                           "variable and name it with api_key_env: VAR (or api_key: os.environ/VAR)");
            }
        } else if (!strcmp(k, "timeout")) {
            TRY(get_number(c, vn, sub, 0.001, 86400, &b->timeout_s));
        } else if (!strcmp(k, "connect_timeout")) {
            TRY(get_number(c, vn, sub, 0.001, 3600, &b->connect_timeout_s));
        } else if (!strcmp(k, "first_token_timeout")) {
            TRY(get_number(c, vn, sub, 0.001, 86400, &b->first_token_timeout_s));
        } else if (!strcmp(k, "draft")) {
            TRY(get_string(c, vn, sub, &b->draft));
            TRY(resolve_path(c, &b->draft));
        } else if (!strcmp(k, "parallel")) {
            TRY(get_int(c, vn, sub, 1, 1024, &b->n_parallel));
        } else if (!strcmp(k, "ctx_size")) {
            TRY(get_int(c, vn, sub, 1, INT32_MAX, &b->n_ctx));
        } else if (!strcmp(k, "cache_type_k") || !strcmp(k, "cache_type_v")) {
            const bool is_k = k[11] == 'k';
            SOFT(get_cache_type(c, vn, sub, is_k ? &b->type_k : &b->type_v));
            *(is_k ? &b->has_type_k : &b->has_type_v) = true;
        } else if (!cfg_backend_litellm_key(c, m, b, kn, vn, k, key)) {
            bad(c, kn, sub,
                "unknown key (a backend takes local/path, api_base, model, api_key_env, timeout, "
                "connect_timeout, first_token_timeout, parallel, ctx_size, cache_type_k, cache_type_v, draft, "
                "name, and LiteLLM's rpm, tpm, weight, order, stream_timeout)");
        }
    }
    if (litellm)
        TRY(cfg_litellm_backend_done(c, b, n, key, &remote));
    if (local && remote)
        return bad(c, where, key, "a backend is either local (local: FILE) or remote (api_base: URL), not both");
    if (!local && !remote)
        return bad(c, n, key, "a backend needs local: FILE or api_base: URL");
    b->kind = local ? PONDER_BACKEND_LOCAL : PONDER_BACKEND_REMOTE;
    if (local && (b->api_key_env || b->model))
        return bad(c, n, key, "api_key_env and model are for remote backends (api_base:)");
    if (remote && (b->n_parallel || b->n_ctx || b->draft || b->has_type_k || b->has_type_v))
        return bad(c, n, key, "parallel, ctx_size, cache_type_k/v and draft are for local backends");
    return PONDER_OK;
}

static ponder_status add_backend(cfg_ctx *c, ponder_route_model_cfg *m, const yaml_node_t *n, const char *key,
                                 bool litellm)
{
    ponder_route_backend_cfg *nb = realloc(m->backends, (size_t)(m->n_backends + 1) * sizeof *nb);
    if (!nb)
        return ponder_error_set(c->err, PONDER_ERR_NOMEM, "out of memory");
    m->backends = nb;
    memset(&nb[m->n_backends], 0, sizeof nb[0]);
    m->n_backends++; /* counted first, so a half-parsed entry is freed with the rest */
    return parse_backend(c, n, key, m, &nb[m->n_backends - 1], litellm);
}


static ponder_status parse_model(cfg_ctx *c, ponder_route_config *cfg, const yaml_node_t *n, int idx)
{
    char key[CFG_KEY_BYTES], sub[CFG_KEY_BYTES + 32];
    snprintf(key, sizeof key, "model_list[%d]", idx);
    TRY(want_type(c, n, YAML_MAPPING_NODE, key));
    const yaml_node_t *name_n = NULL;
    FOR_PAIRS(c, n, kn, vn, k)
    {
        if (!strcmp(k, "model_name"))
            name_n = vn;
    }
    snprintf(sub, sizeof sub, "%s.model_name", key);
    if (!name_n)
        return bad(c, n, sub, "every model needs a model_name");
    TRY(want_type(c, name_n, YAML_SCALAR_NODE, sub));
    const char *name = scalar(name_n);
    if (!name[0])
        return bad(c, name_n, sub, "must not be empty");
    /* LiteLLM lists one deployment per entry and repeats the model_name: the entries'
     * backends are appended in order */
    ponder_route_model_cfg *m = model_named(cfg, name);
    if (!m) {
        ponder_route_model_cfg *nm = realloc(cfg->models, (size_t)(cfg->n_models + 1) * sizeof *nm);
        if (!nm)
            return ponder_error_set(c->err, PONDER_ERR_NOMEM, "out of memory");
        cfg->models = nm;
        m = &nm[cfg->n_models++];
        memset(m, 0, sizeof *m);
        m->line = line_of(n);
        if (!(m->name = strdup(name)))
            return ponder_error_set(c->err, PONDER_ERR_NOMEM, "out of memory");
    }
    int32_t first_backend = m->n_backends;
    FOR_PAIRS(c, n, kn, vn, k)
    {
        snprintf(sub, sizeof sub, "%s.%s", key, k);
        if (!strcmp(k, "model_name"))
            continue;
        if (!strcmp(k, "backends")) {
            TRY(want_type(c, vn, YAML_SEQUENCE_NODE, sub));
            if (vn->data.sequence.items.start == vn->data.sequence.items.top)
                return bad(c, vn, sub, "the list of backends is empty");
            FOR_ITEMS(c, vn, i, item)
            {
                char bk[CFG_KEY_BYTES + 48];
                snprintf(bk, sizeof bk, "%s[%d]", sub, i);
                SOFT(add_backend(c, m, item, bk, false));
            }
        } else if (!strcmp(k, "litellm_params")) {
            m->litellm = true;
            SOFT(add_backend(c, m, vn, sub, true));
        } else if (!strcmp(k, "model_info")) {
            warn(c, kn, sub, "ignored: LiteLLM's model metadata has no meaning in Ponder");
        } else if (!strcmp(k, "price")) {
            const num_key keys[] = { { "input_per_1m", 0, 1e9, &m->price_input_per_1m, NULL },
                                     { "output_per_1m", 0, 1e9, &m->price_output_per_1m, NULL } };
            SOFT(get_numbers(c, vn, sub, keys, 2, "price takes input_per_1m and output_per_1m"));
        } else {
            bad(c, kn, sub, "unknown key (a model takes model_name, backends, litellm_params, model_info, price)");
        }
    }
    if (m->n_backends == first_backend)
        return bad(c, n, key, "model '%s' has no backends (backends: [...] or litellm_params:)", name);
    for (int32_t i = first_backend; i < m->n_backends; i++) {
        ponder_route_backend_cfg *b = &m->backends[i];
        if (!b->name) {
            /* sized to the name: a fixed buffer cut long names into false "used twice" errors */
            size_t len = strlen(m->name) + 16;
            if (!(b->name = malloc(len)))
                return ponder_error_set(c->err, PONDER_ERR_NOMEM, "out of memory");
            snprintf(b->name, len, "%s/%d", m->name, (int)i);
        }
    }
    return PONDER_OK;
}

static ponder_status parse_settings(cfg_ctx *c, ponder_route_config *cfg, const yaml_node_t *n)
{
    ponder_route_settings *s = &cfg->settings;
    TRY(want_type(c, n, YAML_MAPPING_NODE, "router_settings"));
    char sub[CFG_KEY_BYTES];
    FOR_PAIRS(c, n, kn, vn, k)
    {
        snprintf(sub, sizeof sub, "router_settings.%s", k);
        if (!strcmp(k, "retry_backoff_ms"))
            SOFT(get_number(c, vn, sub, 0, 600000, &s->retry_backoff_ms));
        else if (!strcmp(k, "retry_backoff_max_ms"))
            SOFT(get_number(c, vn, sub, 0, 600000, &s->retry_backoff_max_ms));
        else if (!strcmp(k, "retry_after_max_s"))
            SOFT(get_number(c, vn, sub, 0, 3600, &s->retry_after_max_s));
        else if (!strcmp(k, "circuit_breaker")) {
            const num_key keys[] = { { "failures", 0, 1000000, NULL, &s->breaker_failures },
                                     { "cooldown_s", 0, 86400, &s->breaker_cooldown_s, NULL } };
            SOFT(get_numbers(c, vn, sub, keys, 2, "circuit_breaker takes failures and cooldown_s"));
        } else if (!cfg_router_litellm_key(c, cfg, kn, vn, k))
            bad(c, kn, sub,
                "unknown key (router_settings takes num_retries, retry_backoff_ms, retry_backoff_max_ms, "
                "retry_after_max_s, circuit_breaker, and LiteLLM's routing_strategy, timeout, stream_timeout, "
                "fallbacks, context_window_fallbacks, default_fallbacks, allowed_fails, cooldown_time, "
                "retry_after, model_group_alias)");
    }
    if (s->retry_backoff_max_ms < s->retry_backoff_ms)
        s->retry_backoff_max_ms = s->retry_backoff_ms;
    return PONDER_OK;
}


/* routes: NAME: {cascade: [{model, strategy, cue, temperature, accept_if}, …]} — stage
 * models are checked once every route is known (a stage may name a fallback route). */
static ponder_status parse_cascade(cfg_ctx *c, ponder_route_cfg *r, const yaml_node_t *n, const char *key)
{
    TRY(want_type(c, n, YAML_SEQUENCE_NODE, key));
    int32_t n_items = (int32_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (n_items < 2)
        return bad(c, n, key, "a cascade needs at least two stages (System 1, then System 2)");
    if (!(r->stages = calloc((size_t)n_items, sizeof *r->stages)))
        return ponder_error_set(c->err, PONDER_ERR_NOMEM, "out of memory");
    FOR_ITEMS(c, n, i, item)
    {
        char sk[CFG_KEY_BYTES + 48], sub[CFG_KEY_BYTES + 96];
        snprintf(sk, sizeof sk, "%s[%d]", key, i);
        ponder_route_stage_cfg *st = &r->stages[r->n_stages++];
        st->cue = true;
        st->temperature = -1;
        st->line = line_of(item);
        TRY(want_type(c, item, YAML_MAPPING_NODE, sk));
        const yaml_node_t *accept_n = NULL;
        FOR_PAIRS(c, item, kn, vn, k)
        {
            snprintf(sub, sizeof sub, "%s.%s", sk, k);
            if (!strcmp(k, "model")) {
                TRY(get_string(c, vn, sub, &st->model));
            } else if (!strcmp(k, "strategy")) {
                char *text = NULL;
                ponder_status gs = get_string(c, vn, sub, &text);
                if (gs)
                    return gs;
                ponder_strategy strat;
                ponder_error perr;
                gs = ponder_strategy_parse(text, &strat, &perr);
                free(text);
                if (gs)
                    return bad(c, vn, sub, "%s", perr.msg);
                char canon[32];
                if (!(st->strategy = strdup(ponder_strategy_format(&strat, canon, sizeof canon))))
                    return ponder_error_set(c->err, PONDER_ERR_NOMEM, "out of memory");
            } else if (!strcmp(k, "cue")) {
                const char *v = scalar(vn);
                if (v && (!strcmp(v, "true") || !strcmp(v, "false")))
                    st->cue = !strcmp(v, "true");
                else
                    return bad(c, vn, sub, "expected true or false, found '%s'", v ? v : "(not a value)");
            } else if (!strcmp(k, "temperature")) {
                TRY(get_number(c, vn, sub, 0, 2, &st->temperature));
            } else if (!strcmp(k, "accept_if")) {
                TRY(want_type(c, vn, YAML_MAPPING_NODE, sub));
                accept_n = kn;
                FOR_PAIRS(c, vn, ak, av, akey)
                {
                    char akk[CFG_KEY_BYTES + 160];
                    snprintf(akk, sizeof akk, "%s.%s", sub, akey);
                    if (!strcmp(akey, "agreement")) {
                        TRY(get_number(c, av, akk, 0, 1, &st->min_agreement));
                        st->has_min_agreement = true;
                    } else if (!strcmp(akey, "mean_logprob")) {
                        TRY(get_number(c, av, akk, -1e6, 0, &st->min_mean_logprob));
                        st->has_min_mean_logprob = true;
                    } else {
                        return bad(c, ak, akk, "unknown key (accept_if takes agreement and mean_logprob)");
                    }
                }
                if (!st->has_min_agreement && !st->has_min_mean_logprob)
                    return bad(c, vn, sub, "give agreement, mean_logprob or both (ponder calibrate prints them)");
            } else {
                return bad(c, kn, sub,
                           "unknown key (a cascade stage takes model, strategy, cue, temperature, accept_if)");
            }
        }
        snprintf(sub, sizeof sub, "%s.model", sk);
        if (!st->model)
            return bad(c, item, sub, "every stage needs a model");
        bool last = i == n_items - 1;
        snprintf(sub, sizeof sub, "%s.accept_if", sk);
        if (last && accept_n)
            return bad(c, accept_n, sub, "the last stage always answers: accept_if belongs to the stages before it");
        if (!last && !accept_n)
            return bad(c, item, sub, "missing: a stage before the last escalates unless accept_if holds");
        if (!st->strategy && !(st->strategy = strdup("cot")))
            return ponder_error_set(c->err, PONDER_ERR_NOMEM, "out of memory");
        if (!strv_push(&r->chain, &r->n_chain, st->model))
            return ponder_error_set(c->err, PONDER_ERR_NOMEM, "out of memory");
    }
    return PONDER_OK;
}

/* Stage models name a model or a fallback route (not another cascade, not itself). */
static ponder_status check_cascades(cfg_ctx *c, ponder_route_config *cfg)
{
    for (int32_t i = 0; i < cfg->n_routes; i++) {
        ponder_route_cfg *r = &cfg->routes[i];
        for (int32_t s = 0; s < r->n_stages; s++) {
            const char *m = r->stages[s].model;
            const ponder_route_cfg *other = NULL;
            for (int32_t j = 0; j < cfg->n_routes; j++)
                if (!strcmp(cfg->routes[j].name, m))
                    other = &cfg->routes[j];
            if (other && other->n_stages > 0)
                return ponder_error_set(c->err, PONDER_ERR_FORMAT,
                                        "%s:%d: routes.%s.cascade[%d].model: '%s' is a cascade; a stage names a "
                                        "model or a fallback route",
                                        c->source, r->stages[s].line, r->name, (int)s, m);
            if (!other && !model_named(cfg, m))
                return ponder_error_set(c->err, PONDER_ERR_FORMAT,
                                        "%s:%d: routes.%s.cascade[%d].model: '%s' is not a model_name of model_list "
                                        "or a route",
                                        c->source, r->stages[s].line, r->name, (int)s, m);
        }
    }
    return PONDER_OK;
}

/* routes: NAME: [model, …]   or   NAME: {fallbacks: [model, …]} */
static ponder_status parse_routes(cfg_ctx *c, ponder_route_config *cfg, const yaml_node_t *n)
{
    TRY(want_type(c, n, YAML_MAPPING_NODE, "routes"));
    char sub[CFG_KEY_BYTES];
    FOR_PAIRS(c, n, kn, vn, k)
    {
        snprintf(sub, sizeof sub, "routes.%s", k);
        if (!k[0])
            return bad(c, kn, "routes", "a route needs a name");
        for (int32_t i = 0; i < cfg->n_routes; i++)
            if (!strcmp(cfg->routes[i].name, k))
                return bad(c, kn, sub, "route '%s' is defined twice (first on line %d)", k, cfg->routes[i].line);
        const yaml_node_t *list = vn, *cascade = NULL;
        char lkey[CFG_KEY_BYTES + 16];
        snprintf(lkey, sizeof lkey, "%s", sub);
        if (vn && vn->type == YAML_MAPPING_NODE) {
            list = NULL;
            FOR_PAIRS(c, vn, fk, fv, fkey)
            {
                if (!strcmp(fkey, "cascade")) {
                    cascade = fv;
                    continue;
                }
                if (strcmp(fkey, "fallbacks") != 0) {
                    snprintf(lkey, sizeof lkey, "%s.%s", sub, fkey);
                    return bad(c, fk, lkey,
                               "unknown key (a route takes fallbacks: [MODEL, ...] or cascade: [STAGE, ...])");
                }
                list = fv;
            }
            snprintf(lkey, sizeof lkey, "%s.fallbacks", sub);
            if (cascade && list)
                return bad(c, kn, sub, "a route is either a cascade or a fallback chain, not both");
            if (!list && !cascade)
                return bad(c, vn, lkey, "missing");
        }
        if (cascade) {
            snprintf(lkey, sizeof lkey, "%s.cascade", sub);
            if (model_named(cfg, k))
                return bad(c, kn, sub, "a cascade must not be named like a model ('%s' is in model_list)", k);
            ponder_route_cfg *nr = realloc(cfg->routes, (size_t)(cfg->n_routes + 1) * sizeof *nr);
            if (!nr)
                return ponder_error_set(c->err, PONDER_ERR_NOMEM, "out of memory");
            cfg->routes = nr;
            ponder_route_cfg *r = &nr[cfg->n_routes++];
            memset(r, 0, sizeof *r);
            r->line = line_of(kn);
            if (!(r->name = strdup(k)))
                return ponder_error_set(c->err, PONDER_ERR_NOMEM, "out of memory");
            TRY(parse_cascade(c, r, cascade, lkey));
            continue;
        }
        TRY(want_type(c, list, YAML_SEQUENCE_NODE, lkey));
        ponder_route_cfg *nr = realloc(cfg->routes, (size_t)(cfg->n_routes + 1) * sizeof *nr);
        if (!nr)
            return ponder_error_set(c->err, PONDER_ERR_NOMEM, "out of memory");
        cfg->routes = nr;
        ponder_route_cfg *r = &nr[cfg->n_routes++];
        memset(r, 0, sizeof *r);
        r->line = line_of(kn);
        if (!(r->name = strdup(k)))
            return ponder_error_set(c->err, PONDER_ERR_NOMEM, "out of memory");
        /* a model's own name first: "small: [big]" reads "small, falling back to big" */
        if (model_named(cfg, k) && !strv_push(&r->chain, &r->n_chain, k))
            return ponder_error_set(c->err, PONDER_ERR_NOMEM, "out of memory");
        FOR_ITEMS(c, list, i, item)
        {
            char ik[CFG_KEY_BYTES + 48];
            snprintf(ik, sizeof ik, "%s[%d]", lkey, i);
            TRY(want_type(c, item, YAML_SCALAR_NODE, ik));
            const char *mn = scalar(item);
            if (!model_named(cfg, mn))
                return bad(c, item, ik, "'%s' is not a model_name of model_list", mn);
            bool dup = false;
            for (int32_t j = 0; j < r->n_chain; j++)
                dup |= !strcmp(r->chain[j], mn);
            if (dup) {
                if (i == 0 && !strcmp(mn, k))
                    continue; /* "small: [small, big]" is the same chain */
                return bad(c, item, ik, "'%s' is already in this chain", mn);
            }
            if (!strv_push(&r->chain, &r->n_chain, mn))
                return ponder_error_set(c->err, PONDER_ERR_NOMEM, "out of memory");
        }
        if (r->n_chain == 0)
            return bad(c, list, lkey, "the chain is empty");
    }
    return PONDER_OK;
}

static ponder_status parse_root(cfg_ctx *c, ponder_route_config *cfg)
{
    yaml_node_t *root = yaml_document_get_root_node(c->doc);
    if (!root)
        return ponder_error_set(c->err, PONDER_ERR_FORMAT, "%s:1: model_list: the file is empty", c->source);
    TRY(want_type(c, root, YAML_MAPPING_NODE, "(top level)"));
    const yaml_node_t *models = NULL, *settings = NULL, *routes = NULL, *litellm = NULL, *general = NULL;
    /* LiteLLM's top-level sections that mean nothing here */
    static const char *const ignored[] = { "environment_variables", "include", "files_settings",
                                           "assistant_settings", "finetune_settings", "guardrails",
                                           "credential_list", "mcp_servers", "search_tools",
                                           "vector_store_registry", NULL };
    FOR_PAIRS(c, root, kn, vn, k)
    {
        const yaml_node_t **slot = !strcmp(k, "model_list")         ? &models
                                   : !strcmp(k, "router_settings")  ? &settings
                                   : !strcmp(k, "routes")           ? &routes
                                   : !strcmp(k, "litellm_settings") ? &litellm
                                   : !strcmp(k, "general_settings") ? &general
                                                                    : NULL;
        bool known = false;
        for (int i = 0; !slot && ignored[i]; i++)
            known |= !strcmp(k, ignored[i]);
        if (known)
            warn(c, kn, k, "ignored: a LiteLLM section with no meaning in Ponder (set environment variables in "
                           "the environment)");
        else if (!slot)
            bad(c, kn, k,
                "unknown key (the top level takes model_list, router_settings, routes, and LiteLLM's "
                "litellm_settings, general_settings)");
        else
            *slot = vn;
    }
    if (!models)
        return bad(c, root, "model_list", "missing: the file must list at least one model");
    TRY(want_type(c, models, YAML_SEQUENCE_NODE, "model_list"));
    if (models->data.sequence.items.start == models->data.sequence.items.top)
        return bad(c, models, "model_list", "the list is empty");
    FOR_ITEMS(c, models, i, item)
    {
        SOFT(parse_model(c, cfg, item, i));
    }
    /* backend names are ids in /metrics: unique */
    for (int32_t a = 0; a < cfg->n_models; a++)
        for (int32_t ai = 0; ai < cfg->models[a].n_backends; ai++)
            for (int32_t b = 0; b <= a; b++)
                for (int32_t bi = 0; bi < (b == a ? ai : cfg->models[b].n_backends); bi++)
                    if (cfg->models[a].backends[ai].name && cfg->models[b].backends[bi].name &&
                        !strcmp(cfg->models[a].backends[ai].name, cfg->models[b].backends[bi].name)) {
                        char sub[64];
                        snprintf(sub, sizeof sub, "name");
                        yaml_node_t at = { 0 };
                        at.start_mark.line = (size_t)(cfg->models[a].backends[ai].line - 1);
                        bad(c, &at, sub, "backend name '%s' is used twice (also line %d)",
                            cfg->models[a].backends[ai].name, cfg->models[b].backends[bi].line);
                    }
    if (litellm)
        SOFT(cfg_litellm_settings(c, cfg, litellm));
    if (settings)
        SOFT(parse_settings(c, cfg, settings));
    if (general)
        SOFT(cfg_general_settings(c, cfg, general));
    if (routes)
        SOFT(parse_routes(c, cfg, routes));
    if (c->n_errors == 0)
        TRY(check_cascades(c, cfg));
    TRY(cfg_litellm_finish(c, cfg));
    if (c->n_errors > 0)
        return PONDER_ERR_FORMAT;
    return PONDER_OK;
}

ponder_status ponder_route_config_parse(const char *text, size_t len, const char *source, const char *dir,
                                        ponder_route_config **out, ponder_error *err)
{
    return ponder_route_config_parse_noted(text, len, source, dir, NULL, NULL, out, err);
}

ponder_status ponder_route_config_parse_noted(const char *text, size_t len, const char *source, const char *dir,
                                              ponder_route_config_note_fn note, void *user,
                                              ponder_route_config **out, ponder_error *err)
{
    *out = NULL;
    if (!source)
        source = "(config)";
    ponder_route_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg || !(cfg->source = strdup(source))) {
        free(cfg);
        return ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory");
    }
    cfg->settings = ponder_route_settings_default();
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) {
        ponder_route_config_free(cfg);
        return ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory");
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        yaml_mark_t m = parser.problem_mark.line || !parser.context_mark.line ? parser.problem_mark : parser.context_mark;
        ponder_error_set(err, PONDER_ERR_FORMAT, "%s:%d: (YAML syntax): %s%s%s", source, (int)m.line + 1,
                         parser.problem ? parser.problem : "malformed YAML", parser.context ? " " : "",
                         parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        ponder_route_config_free(cfg);
        return PONDER_ERR_FORMAT;
    }
    cfg_ctx c = { .doc = &doc, .source = source, .dir = dir, .err = err, .note = note, .note_user = user };
    ponder_status st = parse_root(&c, cfg);
    if (st != PONDER_OK && c.n_errors > 1) {
        size_t n = strlen(err->msg);
        snprintf(err->msg + n, sizeof err->msg - n, " (and %d more error%s)", c.n_errors - 1,
                 c.n_errors > 2 ? "s" : "");
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    if (st != PONDER_OK) {
        ponder_route_config_free(cfg);
        return st;
    }
    *out = cfg;
    return PONDER_OK;
}

ponder_status ponder_route_config_load(const char *path, ponder_route_config **out, ponder_error *err)
{
    return ponder_route_config_load_noted(path, NULL, NULL, out, err);
}

ponder_status ponder_route_config_load_noted(const char *path, ponder_route_config_note_fn note, void *user,
                                             ponder_route_config **out, ponder_error *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return ponder_error_set(err, PONDER_ERR_IO, "cannot open config '%s': %s", path, strerror(errno));
    char *text = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *t = realloc(text, cap);
            if (!t) {
                free(text);
                fclose(f);
                return ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory");
            }
            text = t;
        }
        size_t got = fread(text + len, 1, 4096, f);
        len += got;
        if (got < 4096)
            break;
    }
    bool ioerr = ferror(f);
    fclose(f);
    if (ioerr) {
        free(text);
        return ponder_error_set(err, PONDER_ERR_IO, "cannot read config '%s'", path);
    }
    char *dir = strdup(path);
    if (!dir) {
        free(text);
        return ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory");
    }
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        dir[0] = '\0';
    ponder_status st = ponder_route_config_parse_noted(text, len, path, dir, note, user, out, err);
    free(dir);
    free(text);
    return st;
}

void ponder_route_config_free(ponder_route_config *c)
{
    if (!c)
        return;
    for (int32_t i = 0; i < c->n_models; i++) {
        ponder_route_model_cfg *m = &c->models[i];
        for (int32_t j = 0; j < m->n_backends; j++) {
            ponder_route_backend_cfg *b = &m->backends[j];
            free(b->name);
            free(b->path);
            free(b->draft);
            free(b->api_base);
            free(b->model);
            free(b->api_key_env);
        }
        free(m->backends);
        free(m->name);
    }
    free(c->models);
    for (int32_t i = 0; i < c->n_routes; i++) {
        for (int32_t j = 0; j < c->routes[i].n_chain; j++)
            free(c->routes[i].chain[j]);
        free(c->routes[i].chain);
        for (int32_t j = 0; j < c->routes[i].n_ctx_chain; j++)
            free(c->routes[i].ctx_chain[j]);
        free(c->routes[i].ctx_chain);
        for (int32_t j = 0; j < c->routes[i].n_stages; j++) {
            free(c->routes[i].stages[j].model);
            free(c->routes[i].stages[j].strategy);
        }
        free(c->routes[i].stages);
        free(c->routes[i].name);
    }
    free(c->routes);
    free(c->master_key_env);
    free(c->master_key);
    free(c->source);
    free(c);
}

const ponder_route_model_cfg *ponder_route_config_model(const ponder_route_config *c, const char *name)
{
    for (int32_t i = 0; c && name && i < c->n_models; i++)
        if (!strcmp(c->models[i].name, name))
            return &c->models[i];
    return NULL;
}

const ponder_route_cfg *ponder_route_config_find(const ponder_route_config *c, const char *name,
                                                 ponder_route_cfg *scratch)
{
    if (!c || !name)
        return NULL;
    for (int32_t i = 0; i < c->n_routes; i++)
        if (!strcmp(c->routes[i].name, name))
            return &c->routes[i];
    for (int32_t i = 0; i < c->n_models; i++)
        if (!strcmp(c->models[i].name, name)) {
            /* the model alone: scratch borrows the config's strings (every field set: a
             * caller's scratch on the stack must not leak garbage, e.g. n_stages) */
            *scratch = (ponder_route_cfg){ 0 };
            scratch->name = c->models[i].name;
            scratch->chain = &c->models[i].name;
            scratch->n_chain = 1;
            scratch->line = c->models[i].line;
            return scratch;
        }
    return NULL;
}

/* s as a YAML double-quoted scalar (backslash, quote and control bytes escaped) appended
 * to out at *n (out has room: 4 bytes per byte of s + 3). */
static void yaml_quoted(char *out, size_t *n, const char *s)
{
    out[(*n)++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            out[(*n)++] = '\\';
            out[(*n)++] = (char)*p;
        } else if (*p < 0x20 || *p == 0x7f) {
            *n += (size_t)sprintf(out + *n, "\\x%02x", *p);
        } else {
            out[(*n)++] = (char)*p;
        }
    }
    out[(*n)++] = '"';
    out[*n] = '\0';
}

ponder_status ponder_route_config_for_model(const char *name, const char *path, const char *draft,
                                            ponder_route_config **out, ponder_error *err)
{
    *out = NULL;
    size_t cap = 256 + 4 * (strlen(name) + strlen(path) + (draft ? strlen(draft) : 0));
    char *y = malloc(cap);
    if (!y)
        return ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory");
    size_t n = (size_t)sprintf(y, "model_list:\n  - model_name: ");
    yaml_quoted(y, &n, name);
    n += (size_t)sprintf(y + n, "\n    backends:\n      - local: ");
    yaml_quoted(y, &n, path);
    if (draft) {
        n += (size_t)sprintf(y + n, "\n        draft: ");
        yaml_quoted(y, &n, draft);
    }
    /* one backend: nothing to retry or fall back to, and no breaker to open */
    n += (size_t)sprintf(y + n, "\nrouter_settings: {num_retries: 0, circuit_breaker: {failures: 0}}\n");
    ponder_status st = ponder_route_config_parse(y, n, "serve -m", NULL, out, err);
    free(y);
    if (st != PONDER_OK)
        return st;
    /* no deadlines: the engine takes as long as the answer takes, as `ponder serve` always did */
    ponder_route_backend_cfg *b = &(*out)->models[0].backends[0];
    b->timeout_s = b->first_token_timeout_s = INFINITY;
    return PONDER_OK;
}
