/*
 * config_litellm.c — LiteLLM's proxy config.yaml read as it is written: litellm_settings,
 * general_settings, LiteLLM's router_settings keys and litellm_params beyond Ponder's own
 * backend keys, with LiteLLM's meanings (docs/config.md has the table):
 *   fallbacks / context_window_fallbacks / default_fallbacks → fallback routes;
 *   num_retries, timeout / request_timeout, stream_timeout, allowed_fails, cooldown_time,
 *   retry_after → the router's settings; routing_strategy, rpm, tpm, weight, order → load
 *   balancing across a model's deployments; master_key → the router's API key;
 *   model: openai/NAME or hosted_vllm/NAME → NAME upstream (OpenAI's base URL when no
 *   api_base is given); model_group_alias → alias routes.
 * Keys LiteLLM has that mean nothing here (budgets, databases, callbacks, UI) are accepted
 * with a warning naming them; anything else is an error, as a misspelt key must be.
 */
#include "route/config_internal.h"

#define OPENAI_API_BASE "https://api.openai.com/v1"

static bool in_list(const char *k, const char *const *list)
{
    for (; *list; list++)
        if (!strcmp(k, *list))
            return true;
    return false;
}

static const char *const IGNORED_LITELLM_SETTINGS[] = {
    "drop_params", "set_verbose", "json_logs", "success_callback", "failure_callback", "callbacks",
    "service_callback", "callback_settings", "cache", "cache_params", "turn_off_message_logging",
    "redact_user_api_key_info", "max_budget", "budget_duration", "telemetry", "modify_params",
    "max_internal_user_budget", "internal_user_budget_duration", "default_team_settings",
    "upperbound_key_generate_params", "default_key_generate_params", "key_generation_settings",
    "disable_end_user_cost_tracking", "enable_json_schema_validation", "content_policy_fallbacks",
    "return_response_headers", "ssl_verify", "force_ipv4", "mcp_aliases", "enable_preview_features",
    "default_internal_user_params", "forward_client_headers_to_llm_api", "log_raw_request_response",
    "store_audit_logs", "langfuse_default_tags", "public_teams", "max_end_user_budget", NULL
};

static const char *const IGNORED_GENERAL_SETTINGS[] = {
    "database_url", "database_connection_pool_limit", "database_connection_timeout", "store_model_in_db",
    "store_prompts_in_spend_logs", "alerting", "alerting_threshold", "alert_types", "alerting_args",
    "proxy_batch_write_at", "disable_spend_logs", "disable_master_key_return", "disable_reset_budget",
    "disable_adding_master_key_hash_to_db", "enable_jwt_auth", "litellm_jwtauth", "ui_access_mode",
    "allowed_routes", "admin_only_routes", "public_routes", "infer_model_from_keys", "background_health_checks",
    "health_check_interval", "health_check_details", "max_parallel_requests", "global_max_parallel_requests",
    "custom_auth", "custom_sso", "pass_through_endpoints", "enforce_user_param", "allowed_ips",
    "use_x_forwarded_for", "forward_openai_org_id", "forward_client_headers_to_llm_api",
    "maximum_spend_logs_retention_period", "disable_retry_on_max_parallel_request_limit_error", "otel",
    "service_account_settings", "key_management_system", "key_management_settings", "user_header_name",
    "proxy_budget_rescheduler_min_time", "proxy_budget_rescheduler_max_time", "embedding_model",
    "default_team_disabled", "allow_requests_on_db_unavailable", "enable_oauth2_auth",
    "use_redis_transaction_buffer", "disable_prisma_schema_update", "master_key_env", NULL
};

static const char *const IGNORED_ROUTER_SETTINGS[] = {
    "redis_host", "redis_password", "redis_port", "redis_url", "cache_responses", "cache_kwargs",
    "enable_pre_call_checks", "optional_pre_call_checks", "routing_strategy_args", "provider_budget_config",
    "allowed_fails_policy", "retry_policy", "model_group_retry_policy", "default_max_parallel_requests",
    "enable_tag_filtering", "content_policy_fallbacks", "default_litellm_params", "set_verbose",
    "debug_level", "polling_interval", "client_ttl", "max_fallbacks", "disable_cooldowns", NULL
};

static const char *const IGNORED_LITELLM_PARAMS[] = {
    "max_retries", "organization", "api_version", "temperature", "max_tokens", "top_p", "seed", "stop",
    "tags", "region_name", "mock_response", "extra_headers", "use_in_pass_through", "merge_reasoning_content_in_choices",
    NULL
};

ponder_route_cfg *cfg_add_route(cfg_ctx *c, ponder_route_config *cfg, const char *name, const yaml_node_t *at,
                                const char *key)
{
    for (int32_t i = 0; i < cfg->n_routes; i++)
        if (!strcmp(cfg->routes[i].name, name)) {
            bad(c, at, key, "a fallback chain for '%s' is given twice (also line %d)", name, cfg->routes[i].line);
            return NULL;
        }
    ponder_route_cfg *nr = realloc(cfg->routes, (size_t)(cfg->n_routes + 1) * sizeof *nr);
    if (!nr)
        return NULL;
    cfg->routes = nr;
    ponder_route_cfg *r = &nr[cfg->n_routes++];
    memset(r, 0, sizeof *r);
    r->line = line_of(at);
    if (!(r->name = strdup(name)))
        return NULL;
    if (model_named(cfg, name) && !strv_push(&r->chain, &r->n_chain, name))
        return NULL;
    return r;
}

static ponder_route_cfg *route_named(ponder_route_config *cfg, const char *name)
{
    for (int32_t i = 0; i < cfg->n_routes; i++)
        if (!strcmp(cfg->routes[i].name, name))
            return &cfg->routes[i];
    return NULL;
}

/* A list of model names into *v (each a model_name of model_list, none twice). */
static ponder_status model_list_into(cfg_ctx *c, ponder_route_config *cfg, const yaml_node_t *n, const char *key,
                                     char ***v, int32_t *nv)
{
    if (n && n->type == YAML_SCALAR_NODE) { /* LiteLLM also takes one name */
        const char *mn = scalar(n);
        if (!model_named(cfg, mn))
            return bad(c, n, key, "'%s' is not a model_name of model_list", mn);
        return strv_push(v, nv, mn) ? PONDER_OK : PONDER_ERR_NOMEM;
    }
    TRY(want_type(c, n, YAML_SEQUENCE_NODE, key));
    FOR_ITEMS(c, n, i, item)
    {
        char ik[CFG_KEY_BYTES + 48];
        snprintf(ik, sizeof ik, "%s[%d]", key, i);
        TRY(want_type(c, item, YAML_SCALAR_NODE, ik));
        const char *mn = scalar(item);
        if (!model_named(cfg, mn)) {
            bad(c, item, ik, "'%s' is not a model_name of model_list", mn);
            continue;
        }
        bool dup = false;
        for (int32_t j = 0; j < *nv; j++)
            dup |= !strcmp((*v)[j], mn);
        if (dup)
            continue;
        if (!strv_push(v, nv, mn))
            return PONDER_ERR_NOMEM;
    }
    return PONDER_OK;
}

/* fallbacks: [{MODEL: [FALLBACK, …]}, …] — LiteLLM's list of one-key mappings (a plain
 * mapping is taken too); context: context_window_fallbacks, into the route's ctx_chain. */
static ponder_status parse_fallbacks(cfg_ctx *c, ponder_route_config *cfg, const yaml_node_t *n, const char *key,
                                     bool context)
{
    if (n && n->type == YAML_MAPPING_NODE) {
        FOR_PAIRS(c, n, kn, vn, k)
        {
            char sub[CFG_KEY_BYTES + 64];
            snprintf(sub, sizeof sub, "%s.%s", key, k);
            if (!model_named(cfg, k) && !route_named(cfg, k)) {
                bad(c, kn, sub, "'%s' is not a model_name of model_list", k);
                continue;
            }
            ponder_route_cfg *r = route_named(cfg, k);
            if (r && !context && r->n_chain > (model_named(cfg, k) ? 1 : 0)) {
                bad(c, kn, sub, "a fallback chain for '%s' is given twice (also line %d)", k, r->line);
                continue;
            }
            if (!r && !(r = cfg_add_route(c, cfg, k, kn, sub)))
                return c->n_errors ? PONDER_ERR_FORMAT : PONDER_ERR_NOMEM;
            if (!r->line)
                r->line = line_of(kn);
            SOFT(context ? model_list_into(c, cfg, vn, sub, &r->ctx_chain, &r->n_ctx_chain)
                         : model_list_into(c, cfg, vn, sub, &r->chain, &r->n_chain));
        }
        return PONDER_OK;
    }
    TRY(want_type(c, n, YAML_SEQUENCE_NODE, key));
    FOR_ITEMS(c, n, i, item)
    {
        char ik[CFG_KEY_BYTES + 48];
        snprintf(ik, sizeof ik, "%s[%d]", key, i);
        if (want_type(c, item, YAML_MAPPING_NODE, ik) == PONDER_OK)
            SOFT(parse_fallbacks(c, cfg, item, ik, context));
    }
    return PONDER_OK;
}

/* default_fallbacks: [MODEL, …] after every model without a chain of its own. */
static ponder_status parse_default_fallbacks(cfg_ctx *c, ponder_route_config *cfg, const yaml_node_t *n,
                                             const char *key)
{
    char **list = NULL;
    int32_t n_list = 0;
    ponder_status st = model_list_into(c, cfg, n, key, &list, &n_list);
    for (int32_t m = 0; st == PONDER_OK && m < cfg->n_models; m++) {
        const char *name = cfg->models[m].name;
        if (route_named(cfg, name))
            continue;
        ponder_route_cfg *r = cfg_add_route(c, cfg, name, n, key);
        if (!r) {
            st = PONDER_ERR_NOMEM;
            break;
        }
        for (int32_t j = 0; j < n_list; j++)
            if (strcmp(list[j], name) != 0 && !strv_push(&r->chain, &r->n_chain, list[j]))
                st = PONDER_ERR_NOMEM;
    }
    for (int32_t j = 0; j < n_list; j++)
        free(list[j]);
    free(list);
    return st;
}

/* model_group_alias: {ALIAS: MODEL} or {ALIAS: {model: MODEL, hidden: bool}} → route ALIAS: [MODEL]. */
static ponder_status parse_aliases(cfg_ctx *c, ponder_route_config *cfg, const yaml_node_t *n, const char *key)
{
    TRY(want_type(c, n, YAML_MAPPING_NODE, key));
    FOR_PAIRS(c, n, kn, vn, k)
    {
        char sub[CFG_KEY_BYTES + 64];
        snprintf(sub, sizeof sub, "%s.%s", key, k);
        const yaml_node_t *target = vn;
        if (vn && vn->type == YAML_MAPPING_NODE) {
            target = NULL;
            FOR_PAIRS(c, vn, ak, av, a)
            {
                if (!strcmp(a, "model"))
                    target = av;
                else if (strcmp(a, "hidden") != 0)
                    bad(c, ak, sub, "unknown key '%s' (an alias takes model and hidden)", a);
            }
        }
        if (!target || target->type != YAML_SCALAR_NODE) {
            bad(c, vn, sub, "expected a model_name (or {model: NAME})");
            continue;
        }
        if (model_named(cfg, k)) {
            bad(c, kn, sub, "'%s' is already a model_name", k);
            continue;
        }
        if (!model_named(cfg, scalar(target))) {
            bad(c, target, sub, "'%s' is not a model_name of model_list", scalar(target));
            continue;
        }
        ponder_route_cfg *r = cfg_add_route(c, cfg, k, kn, sub);
        if (!r)
            return c->n_errors ? PONDER_ERR_FORMAT : PONDER_ERR_NOMEM;
        if (!strv_push(&r->chain, &r->n_chain, scalar(target)))
            return PONDER_ERR_NOMEM;
    }
    return PONDER_OK;
}

static ponder_status parse_balance(cfg_ctx *c, ponder_route_settings *s, const yaml_node_t *vn, const char *key)
{
    TRY(want_type(c, vn, YAML_SCALAR_NODE, key));
    static const struct {
        const char *name;
        ponder_route_balance b;
    } names[] = { { "simple-shuffle", PONDER_BALANCE_SHUFFLE },         { "shuffle", PONDER_BALANCE_SHUFFLE },
                  { "least-busy", PONDER_BALANCE_LEAST_BUSY },          { "latency-based-routing", PONDER_BALANCE_LATENCY },
                  { "usage-based-routing", PONDER_BALANCE_USAGE },      { "usage-based-routing-v2", PONDER_BALANCE_USAGE },
                  { "order", PONDER_BALANCE_ORDER } };
    const char *v = scalar(vn);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(v, names[i].name)) {
            s->balance = names[i].b;
            s->balance_given = true;
            return PONDER_OK;
        }
    return bad(c, vn, key,
               "'%s' is not a routing strategy here (simple-shuffle, least-busy, latency-based-routing, "
               "usage-based-routing, order)",
               v);
}

/* The keys litellm_settings and router_settings share, with LiteLLM's meanings. */
static bool shared_key(cfg_ctx *c, ponder_route_config *cfg, const yaml_node_t *kn, const yaml_node_t *vn,
                       const char *k, const char *sub)
{
    ponder_route_settings *s = &cfg->settings;
    (void)kn;
    if (!strcmp(k, "num_retries"))
        get_int(c, vn, sub, 0, 100, &s->num_retries);
    else if (!strcmp(k, "timeout") || !strcmp(k, "request_timeout"))
        get_number(c, vn, sub, 0.001, 86400, &s->timeout_s);
    else if (!strcmp(k, "stream_timeout"))
        get_number(c, vn, sub, 0.001, 86400, &s->stream_timeout_s);
    else if (!strcmp(k, "allowed_fails"))
        get_int(c, vn, sub, 0, 1000000, &s->breaker_failures);
    else if (!strcmp(k, "cooldown_time"))
        get_number(c, vn, sub, 0, 86400, &s->breaker_cooldown_s);
    else if (!strcmp(k, "fallbacks"))
        parse_fallbacks(c, cfg, vn, sub, false);
    else if (!strcmp(k, "context_window_fallbacks"))
        parse_fallbacks(c, cfg, vn, sub, true);
    else if (!strcmp(k, "default_fallbacks"))
        parse_default_fallbacks(c, cfg, vn, sub);
    else
        return false;
    return true;
}

ponder_status cfg_litellm_settings(cfg_ctx *c, ponder_route_config *cfg, const yaml_node_t *n)
{
    TRY(want_type(c, n, YAML_MAPPING_NODE, "litellm_settings"));
    FOR_PAIRS(c, n, kn, vn, k)
    {
        char sub[CFG_KEY_BYTES];
        snprintf(sub, sizeof sub, "litellm_settings.%s", k);
        if (shared_key(c, cfg, kn, vn, k, sub))
            continue;
        if (in_list(k, IGNORED_LITELLM_SETTINGS))
            warn(c, kn, sub, "ignored: a LiteLLM setting with no meaning in Ponder");
        else
            bad(c, kn, sub,
                "unknown key (litellm_settings takes num_retries, request_timeout, fallbacks, "
                "context_window_fallbacks, default_fallbacks, allowed_fails, cooldown_time)");
    }
    return PONDER_OK;
}

bool cfg_router_litellm_key(cfg_ctx *c, ponder_route_config *cfg, const yaml_node_t *kn, const yaml_node_t *vn,
                            const char *k)
{
    char sub[CFG_KEY_BYTES];
    snprintf(sub, sizeof sub, "router_settings.%s", k);
    if (shared_key(c, cfg, kn, vn, k, sub))
        return true;
    if (!strcmp(k, "routing_strategy")) {
        parse_balance(c, &cfg->settings, vn, sub);
    } else if (!strcmp(k, "retry_after")) {
        double v = 0;
        if (get_number(c, vn, sub, 0, 600, &v) == PONDER_OK)
            cfg->settings.retry_backoff_ms = v * 1000;
    } else if (!strcmp(k, "model_group_alias")) {
        parse_aliases(c, cfg, vn, sub);
    } else if (in_list(k, IGNORED_ROUTER_SETTINGS)) {
        warn(c, kn, sub, "ignored: a LiteLLM setting with no meaning in Ponder");
    } else {
        return false;
    }
    return true;
}

ponder_status cfg_general_settings(cfg_ctx *c, ponder_route_config *cfg, const yaml_node_t *n)
{
    TRY(want_type(c, n, YAML_MAPPING_NODE, "general_settings"));
    FOR_PAIRS(c, n, kn, vn, k)
    {
        char sub[CFG_KEY_BYTES];
        snprintf(sub, sizeof sub, "general_settings.%s", k);
        if (!strcmp(k, "master_key")) {
            char *v = NULL;
            if (get_string(c, vn, sub, &v) != PONDER_OK)
                continue;
            if (!strncmp(v, "os.environ/", 11) && is_env_name(v + 11)) {
                free(cfg->master_key_env);
                cfg->master_key_env = strdup(v + 11);
                free(v);
            } else {
                /* LiteLLM's own examples write the key; take it, but say where it belongs */
                warn(c, vn, sub,
                     "the key is written in the file; prefer master_key: os.environ/VAR (or --api-key-file)");
                free(cfg->master_key);
                cfg->master_key = v;
            }
        } else if (in_list(k, IGNORED_GENERAL_SETTINGS)) {
            warn(c, kn, sub, "ignored: a LiteLLM setting with no meaning in Ponder");
        } else {
            bad(c, kn, sub, "unknown key (general_settings takes master_key)");
        }
    }
    return PONDER_OK;
}

/* LiteLLM's provider prefix on litellm_params.model: openai/ and hosted_vllm/ (and
 * openai-compatible custom_openai/) speak the OpenAI API; the rest of the name goes
 * upstream. Other providers (anthropic/, azure/, bedrock/, …) have APIs of their own. */
static ponder_status strip_provider(cfg_ctx *c, ponder_route_backend_cfg *b, const yaml_node_t *at,
                                    const char *key, bool *openai_default)
{
    *openai_default = false;
    if (!b->model)
        return PONDER_OK;
    static const char *const ok[] = { "openai/", "hosted_vllm/", "custom_openai/", "openai_like/" };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        size_t n = strlen(ok[i]);
        if (!strncmp(b->model, ok[i], n)) {
            memmove(b->model, b->model + n, strlen(b->model + n) + 1);
            if (!b->model[0])
                return bad(c, at, key, "the model name after '%s' is empty", ok[i]);
            *openai_default = i == 0;
            return PONDER_OK;
        }
    }
    const char *slash = strchr(b->model, '/');
    if (!slash) {
        *openai_default = true; /* LiteLLM reads a bare name as OpenAI's */
        return PONDER_OK;
    }
    if (b->api_base)
        return PONDER_OK; /* an upstream name with a slash (Qwen/Qwen2.5-7B) at a given server */
    return bad(c, at, key,
               "provider '%.*s' is not supported: Ponder speaks the OpenAI API (openai/, hosted_vllm/, or an "
               "api_base of an OpenAI-compatible server)",
               (int)(slash - b->model), b->model);
}

bool cfg_backend_litellm_key(cfg_ctx *c, ponder_route_model_cfg *m, ponder_route_backend_cfg *b,
                             const yaml_node_t *kn, const yaml_node_t *vn, const char *k, const char *key)
{
    char sub[CFG_KEY_BYTES + 64];
    snprintf(sub, sizeof sub, "%s.%s", key, k);
    if (!strcmp(k, "rpm"))
        get_int(c, vn, sub, 0, INT32_MAX, &b->rpm);
    else if (!strcmp(k, "tpm"))
        get_int(c, vn, sub, 0, INT32_MAX, &b->tpm);
    else if (!strcmp(k, "weight"))
        get_number(c, vn, sub, 0, 1e9, &b->weight);
    else if (!strcmp(k, "order"))
        get_int(c, vn, sub, 1, 1000000, &b->order);
    else if (!strcmp(k, "stream_timeout"))
        get_number(c, vn, sub, 0.001, 86400, &b->first_token_timeout_s);
    else if (!strcmp(k, "input_cost_per_token") || !strcmp(k, "output_cost_per_token")) {
        double v = 0;
        if (get_number(c, vn, sub, 0, 1e6, &v) == PONDER_OK)
            *(k[0] == 'i' ? &m->price_input_per_1m : &m->price_output_per_1m) = v * 1e6;
    } else if (in_list(k, IGNORED_LITELLM_PARAMS))
        warn(c, kn, sub, "ignored: a LiteLLM parameter with no meaning in Ponder");
    else
        return false;
    return true;
}

/* Called by parse_backend after an entry's keys, for LiteLLM-form entries. */
ponder_status cfg_litellm_backend_done(cfg_ctx *c, ponder_route_backend_cfg *b, const yaml_node_t *n,
                                       const char *key, bool *remote)
{
    bool openai_default = false;
    if (b->path)
        return PONDER_OK;
    TRY(strip_provider(c, b, n, key, &openai_default));
    if (!b->api_base && b->model) {
        if (!openai_default)
            return bad(c, n, key, "hosted_vllm/ needs an api_base");
        if (!(b->api_base = strdup(OPENAI_API_BASE)))
            return PONDER_ERR_NOMEM;
        if (!b->api_key_env && !(b->api_key_env = strdup("OPENAI_API_KEY")))
            return PONDER_ERR_NOMEM;
        *remote = true;
    }
    return PONDER_OK;
}

ponder_status cfg_litellm_finish(cfg_ctx *c, ponder_route_config *cfg)
{
    const ponder_route_settings *s = &cfg->settings;
    for (int32_t i = 0; i < cfg->n_models; i++) {
        ponder_route_model_cfg *m = &cfg->models[i];
        /* LiteLLM's default is simple-shuffle over a model's deployments; Ponder's own
         * backends: lists are an ordered chain unless routing_strategy says otherwise */
        m->balance = s->balance_given ? s->balance : m->litellm ? PONDER_BALANCE_SHUFFLE : PONDER_BALANCE_ORDER;
        for (int32_t j = 0; j < m->n_backends; j++) {
            ponder_route_backend_cfg *b = &m->backends[j];
            if (b->timeout_s < 0)
                b->timeout_s = s->timeout_s > 0 ? s->timeout_s : CFG_DEFAULT_TIMEOUT_S;
            if (b->first_token_timeout_s < 0)
                b->first_token_timeout_s = s->stream_timeout_s > 0 ? s->stream_timeout_s
                                           : s->timeout_s > 0 ? fmin(s->timeout_s, CFG_DEFAULT_FIRST_TOKEN_TIMEOUT_S)
                                                              : CFG_DEFAULT_FIRST_TOKEN_TIMEOUT_S;
            if (b->weight <= 0)
                b->weight = b->rpm > 0 ? b->rpm : b->tpm > 0 ? b->tpm : 1.0;
        }
    }
    (void)c;
    return PONDER_OK;
}
