/*
 * test_route_config.c — `ponder serve --config` files: a full good file read back field by
 * field, LiteLLM's forms (litellm_params, repeated model_name, api_key: os.environ/VAR),
 * and each kind of bad file refused with the key path and the line it is on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ponder/route.h"

static ponder_route_config *parse_ok(const char *yaml)
{
    ponder_route_config *c = NULL;
    ponder_error err;
    ponder_status st = ponder_route_config_parse(yaml, strlen(yaml), "t.yaml", "/cfg", &c, &err);
    if (st != PONDER_OK)
        fail_msg("refused: %s", err.msg);
    return c;
}

/* Asserts the file is refused with a message starting "t.yaml:LINE: KEY:" and containing what. */
static void expect_bad(const char *yaml, int line, const char *key, const char *what)
{
    ponder_route_config *c = (ponder_route_config *)1;
    ponder_error err;
    ponder_status st = ponder_route_config_parse(yaml, strlen(yaml), "t.yaml", NULL, &c, &err);
    if (st == PONDER_OK)
        fail_msg("accepted:\n%s", yaml);
    assert_null(c);
    char want[256];
    snprintf(want, sizeof want, "t.yaml:%d: %s:", line, key);
    if (strncmp(err.msg, want, strlen(want)) != 0)
        fail_msg("message '%s' does not start with '%s'", err.msg, want);
    if (what && !strstr(err.msg, what))
        fail_msg("message '%s' does not say '%s'", err.msg, what);
}

static const char good[] =
    "# two models, a fallback chain and a named route\n"
    "model_list:\n"
    "  - model_name: small\n"
    "    backends:\n"
    "      - local: models/arith-s1.gguf\n"
    "        parallel: 2\n"
    "        draft: models/draft.gguf\n"
    "      - api_base: http://127.0.0.1:8081/v1/\n"
    "        model: arith-s1\n"
    "        api_key_env: REMOTE_KEY\n"
    "        timeout: 30\n"
    "        connect_timeout: 0.5\n"
    "        first_token_timeout: 2\n"
    "        name: replica-a\n"
    "    price: {input_per_1m: 0.1, output_per_1m: 0.4}\n"
    "  - model_name: big\n"
    "    backends:\n"
    "      - path: /abs/big.gguf\n"
    "router_settings:\n"
    "  num_retries: 2\n"
    "  retry_backoff_ms: 50\n"
    "  retry_after_max_s: 3\n"
    "  circuit_breaker: {failures: 4, cooldown_s: 1.5}\n"
    "routes:\n"
    "  small: [big]\n"
    "  chat:\n"
    "    fallbacks: [big, small]\n";

static void test_good_file(void **state)
{
    (void)state;
    ponder_route_config *c = parse_ok(good);
    assert_int_equal(c->n_models, 2);
    const ponder_route_model_cfg *s = &c->models[0];
    assert_string_equal(s->name, "small");
    assert_int_equal(s->line, 3);
    assert_int_equal(s->n_backends, 2);
    assert_int_equal(s->backends[0].kind, PONDER_BACKEND_LOCAL);
    assert_string_equal(s->backends[0].path, "/cfg/models/arith-s1.gguf"); /* relative to the file */
    assert_string_equal(s->backends[0].name, "small/0");
    assert_int_equal(s->backends[0].n_parallel, 2);
    assert_string_equal(s->backends[0].draft, "/cfg/models/draft.gguf"); /* relative to the file too */
    assert_null(s->backends[1].draft);
    assert_int_equal(s->backends[0].line, 5);
    const ponder_route_backend_cfg *r = &s->backends[1];
    assert_int_equal(r->kind, PONDER_BACKEND_REMOTE);
    assert_string_equal(r->api_base, "http://127.0.0.1:8081/v1"); /* trailing slash dropped */
    assert_string_equal(r->model, "arith-s1");
    assert_string_equal(r->api_key_env, "REMOTE_KEY");
    assert_string_equal(r->name, "replica-a");
    assert_true(r->timeout_s == 30 && r->connect_timeout_s == 0.5 && r->first_token_timeout_s == 2);
    assert_true(s->price_input_per_1m == 0.1 && s->price_output_per_1m == 0.4);
    assert_string_equal(c->models[1].backends[0].path, "/abs/big.gguf");
    assert_true(c->models[1].backends[0].timeout_s > 0); /* defaults filled in */
    assert_int_equal(c->settings.num_retries, 2);
    assert_true(c->settings.retry_backoff_ms == 50 && c->settings.retry_after_max_s == 3);
    assert_int_equal(c->settings.breaker_failures, 4);
    assert_true(c->settings.breaker_cooldown_s == 1.5);
    assert_true(c->settings.retry_backoff_max_ms >= 50);

    ponder_route_cfg scratch;
    memset(&scratch, 0xA5, sizeof scratch); /* a caller's stack: find must set every field */
    const ponder_route_cfg *rt = ponder_route_config_find(c, "small", &scratch);
    assert_non_null(rt);
    assert_int_equal(rt->n_chain, 2); /* the model itself first, then its fallback */
    assert_string_equal(rt->chain[0], "small");
    assert_string_equal(rt->chain[1], "big");
    rt = ponder_route_config_find(c, "chat", &scratch);
    assert_int_equal(rt->n_chain, 2);
    assert_string_equal(rt->chain[0], "big");
    assert_string_equal(rt->chain[1], "small");
    memset(&scratch, 0xA5, sizeof scratch);
    rt = ponder_route_config_find(c, "big", &scratch); /* no route: the model alone */
    assert_int_equal(rt->n_chain, 1);
    assert_int_equal(rt->n_stages, 0); /* not a cascade */
    assert_null(rt->stages);
    assert_string_equal(rt->chain[0], "big");
    assert_null(ponder_route_config_find(c, "nope", &scratch));
    assert_non_null(ponder_route_config_model(c, "big"));
    assert_null(ponder_route_config_model(c, "chat"));
    ponder_route_config_free(c);
}

static void test_litellm_forms(void **state)
{
    (void)state;
    ponder_route_config *c = parse_ok("model_list:\n"
                                      "  - model_name: gpt\n"
                                      "    litellm_params:\n"
                                      "      api_base: https://api.example.com/v1\n"
                                      "      model: gpt-4o-mini\n"
                                      "      api_key: os.environ/OPENAI_API_KEY\n"
                                      "  - model_name: gpt\n"
                                      "    litellm_params: {api_base: 'http://10.0.0.2:8080/v1'}\n");
    assert_int_equal(c->n_models, 1); /* repeated model_name: one model, backends in order */
    assert_int_equal(c->models[0].n_backends, 2);
    assert_string_equal(c->models[0].backends[0].api_key_env, "OPENAI_API_KEY");
    assert_string_equal(c->models[0].backends[1].api_base, "http://10.0.0.2:8080/v1");
    assert_string_equal(c->models[0].backends[1].name, "gpt/1");
    assert_null(c->models[0].backends[1].model); /* the model_name is sent */
    assert_int_equal(c->settings.breaker_failures, ponder_route_settings_default().breaker_failures);
    ponder_route_config_free(c);
}

static void test_bad_files(void **state)
{
    (void)state;
    expect_bad("", 1, "model_list", "empty");
    expect_bad("model_list: [\n", 2, "(YAML syntax)", NULL);
    expect_bad("models:\n  - x\n", 1, "models", "unknown key");
    expect_bad("router_settings: {num_retries: 1}\n", 1, "model_list", "missing");
    expect_bad("model_list: []\n", 1, "model_list", "empty");
    expect_bad("model_list:\n  - backends: [{local: a.gguf}]\n", 2, "model_list[0].model_name", "needs");
    expect_bad("model_list:\n  - model_name: a\n", 2, "model_list[0]", "no backends");
    expect_bad("model_list:\n  - model_name: a\n    backends: {local: x}\n", 3, "model_list[0].backends",
               "expected a list");
    expect_bad("model_list:\n  - model_name: a\n    backends:\n      - {}\n", 4, "model_list[0].backends[0]",
               "local: FILE or api_base");
    expect_bad("model_list:\n  - model_name: a\n    backends:\n      - local: a.gguf\n        api_base: http://x\n",
               5, "model_list[0].backends[0]", "not both");
    expect_bad("model_list:\n  - model_name: a\n    backends:\n      - api_base: ftp://x\n", 4,
               "model_list[0].backends[0].api_base", "http");
    /* the secret itself in the file is refused, naming the key and its line */
    expect_bad("model_list:\n  - model_name: a\n    backends:\n      - api_base: http://x/v1\n"
               "        api_key: sk-123456\n",
               5, "model_list[0].backends[0].api_key", "environment variable");
    expect_bad("model_list:\n  - model_name: a\n    backends:\n      - api_base: http://x/v1\n"
               "        api_key_env: not a name\n",
               5, "model_list[0].backends[0].api_key_env", "not an environment variable");
    expect_bad("model_list:\n  - model_name: a\n    backends:\n      - api_base: http://x/v1\n"
               "        timeout: soon\n",
               5, "model_list[0].backends[0].timeout", "expected a number");
    expect_bad("model_list:\n  - model_name: a\n    backends:\n      - api_base: http://x/v1\n"
               "        timeout: -1\n",
               5, "model_list[0].backends[0].timeout", "out of range");
    expect_bad("model_list:\n  - model_name: a\n    backends:\n      - api_base: http://x/v1\n"
               "        timout: 3\n",
               5, "model_list[0].backends[0].timout", "unknown key");
    expect_bad("model_list:\n  - model_name: a\n    backends:\n      - api_base: http://h/v1\n        draft: d.gguf\n", 4,
               "model_list[0].backends[0]", "for local backends");
    expect_bad("model_list:\n  - model_name: a\n    backends:\n      - local: a.gguf\n        parallel: 1.5\n", 5,
               "model_list[0].backends[0].parallel", "whole number");
    expect_bad("model_list:\n  - model_name: a\n    backends: [{local: a.gguf}]\n    price: {input: 1}\n", 4,
               "model_list[0].price.input", "unknown key");
    expect_bad("model_list:\n  - model_name: a\n    backends: [{local: a.gguf, name: x}, {local: b.gguf, name: x}]\n",
               3, "name", "used twice");
    expect_bad("model_list:\n  - model_name: a\n    backends: [{local: a.gguf}]\n"
               "router_settings:\n  circuit_breaker: {failures: 2, cooldown: 3}\n",
               5, "router_settings.circuit_breaker.cooldown", "unknown key");
    expect_bad("model_list:\n  - model_name: a\n    backends: [{local: a.gguf}]\n"
               "router_settings:\n  num_retries: many\n",
               5, "router_settings.num_retries", "number");
    expect_bad("model_list:\n  - model_name: a\n    backends: [{local: a.gguf}]\nroutes:\n  a: [b]\n", 5,
               "routes.a[0]", "not a model_name");
    expect_bad("model_list:\n  - model_name: a\n    backends: [{local: a.gguf}]\nroutes:\n  r: []\n", 5,
               "routes.r", "empty");
    expect_bad("model_list:\n  - model_name: a\n    backends: [{local: a.gguf}]\nroutes:\n  r: {fallback: [a]}\n", 5,
               "routes.r.fallback", "unknown key");
    expect_bad("model_list:\n  - model_name: a\n    backends: [{local: a.gguf}]\nroutes:\n  r: [a, a]\n", 5,
               "routes.r[1]", "already");
    expect_bad("model_list:\n  - model_name: a\n    backends: [{local: a.gguf}]\nroutes:\n  r: a\n", 5, "routes.r",
               "expected a list");
}

static void test_load_file(void **state)
{
    (void)state;
    ponder_route_config *c = (ponder_route_config *)1;
    ponder_error err;
    assert_int_equal(ponder_route_config_load("/nonexistent/x.yaml", &c, &err), PONDER_ERR_IO);
    assert_null(c);
    assert_non_null(strstr(err.msg, "/nonexistent/x.yaml"));
    char path[] = "/tmp/ponder-route-cfg-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("model_list:\n  - model_name: m\n    backends: [{local: rel.gguf}]\n", f);
    fclose(f);
    assert_int_equal(ponder_route_config_load(path, &c, &err), PONDER_OK);
    assert_string_equal(c->models[0].backends[0].path, "/tmp/rel.gguf");
    assert_string_equal(c->source, path);
    ponder_route_config_free(c);
    remove(path);
}

/* ---- LiteLLM's proxy config.yaml as its docs write it ---- */

typedef struct notes {
    int errors, warnings;
    char last_error[512];
} notes;

static void count_note(void *user, bool is_error, const char *line)
{
    notes *n = user;
    if (is_error) {
        n->errors++;
        snprintf(n->last_error, sizeof n->last_error, "%s", line);
    } else {
        n->warnings++;
    }
}

static ponder_route_config *parse_noted(const char *yaml, notes *n)
{
    ponder_route_config *c = NULL;
    ponder_error err;
    memset(n, 0, sizeof *n);
    if (ponder_route_config_parse_noted(yaml, strlen(yaml), "t.yaml", NULL, count_note, n, &c, &err) != PONDER_OK)
        fail_msg("refused: %s", err.msg);
    return c;
}

static const ponder_route_cfg *route_of(const ponder_route_config *c, const char *name)
{
    for (int32_t i = 0; i < c->n_routes; i++)
        if (!strcmp(c->routes[i].name, name))
            return &c->routes[i];
    fail_msg("no route %s", name);
    return NULL;
}

/* LiteLLM's load-balancing example: two deployments of one model_name with rpm limits. */
static const char litellm_lb[] = "model_list:\n"
                                 "  - model_name: gpt-3.5-turbo\n"
                                 "    litellm_params:\n"
                                 "      model: openai/gpt-3.5-turbo\n"
                                 "      api_key: os.environ/OPENAI_API_KEY\n"
                                 "      rpm: 6      # requests per minute\n"
                                 "  - model_name: gpt-3.5-turbo\n"
                                 "    litellm_params:\n"
                                 "      model: hosted_vllm/facebook/opt-125m\n"
                                 "      api_base: http://0.0.0.0:4000/v1\n"
                                 "      rpm: 1440\n"
                                 "router_settings:\n"
                                 "  routing_strategy: usage-based-routing-v2\n"
                                 "  redis_host: os.environ/REDIS_HOST\n"
                                 "  redis_password: os.environ/REDIS_PASSWORD\n"
                                 "  redis_port: os.environ/REDIS_PORT\n"
                                 "  enable_pre_call_checks: true\n"
                                 "general_settings:\n"
                                 "  master_key: sk-1234\n";

/* LiteLLM's reliability example: retries, timeout, fallbacks, context-window fallbacks,
 * allowed_fails and cooldown_time in litellm_settings. */
static const char litellm_reliability[] = "model_list:\n"
                                          "  - model_name: zephyr-beta\n"
                                          "    litellm_params:\n"
                                          "        model: hosted_vllm/HuggingFaceH4/zephyr-7b-beta\n"
                                          "        api_base: http://0.0.0.0:8001/v1\n"
                                          "  - model_name: gpt-3.5-turbo\n"
                                          "    litellm_params:\n"
                                          "        model: gpt-3.5-turbo\n"
                                          "        api_key: os.environ/OPENAI_API_KEY\n"
                                          "  - model_name: gpt-3.5-turbo-16k\n"
                                          "    litellm_params:\n"
                                          "        model: gpt-3.5-turbo-16k\n"
                                          "        api_key: os.environ/OPENAI_API_KEY\n"
                                          "litellm_settings:\n"
                                          "  num_retries: 3\n"
                                          "  request_timeout: 10\n"
                                          "  fallbacks: [{\"zephyr-beta\": [\"gpt-3.5-turbo\"]}]\n"
                                          "  context_window_fallbacks: [{\"zephyr-beta\": [\"gpt-3.5-turbo-16k\"]}, "
                                          "{\"gpt-3.5-turbo\": [\"gpt-3.5-turbo-16k\"]}]\n"
                                          "  allowed_fails: 3\n"
                                          "  cooldown_time: 30\n";

/* A self-hosted vLLM behind LiteLLM: per-deployment timeouts, router_settings, an alias,
 * callbacks and a database that mean nothing here. */
static const char litellm_vllm[] = "model_list:\n"
                                   "  - model_name: llama3\n"
                                   "    litellm_params:\n"
                                   "      model: openai/meta-llama/Meta-Llama-3-8B-Instruct\n"
                                   "      api_base: http://localhost:8000/v1\n"
                                   "      api_key: \"os.environ/VLLM_KEY\"\n"
                                   "      stream_timeout: 5\n"
                                   "      timeout: 60\n"
                                   "      max_retries: 2\n"
                                   "    model_info:\n"
                                   "      id: vllm-1\n"
                                   "router_settings:\n"
                                   "  routing_strategy: latency-based-routing\n"
                                   "  timeout: 30\n"
                                   "  stream_timeout: 10\n"
                                   "  num_retries: 2\n"
                                   "  allowed_fails: 1\n"
                                   "  cooldown_time: 10\n"
                                   "  model_group_alias: {\"gpt-4\": \"llama3\"}\n"
                                   "litellm_settings:\n"
                                   "  drop_params: true\n"
                                   "  success_callback: [\"langfuse\"]\n"
                                   "general_settings:\n"
                                   "  master_key: os.environ/LITELLM_MASTER_KEY\n"
                                   "  database_url: os.environ/DATABASE_URL\n";

static void test_litellm_configs(void **state)
{
    (void)state;
    notes n;
    ponder_route_config *c = parse_noted(litellm_lb, &n);
    assert_int_equal(c->n_models, 1);
    const ponder_route_model_cfg *m = &c->models[0];
    assert_int_equal(m->n_backends, 2);
    assert_int_equal(m->balance, PONDER_BALANCE_USAGE);
    assert_string_equal(m->backends[0].api_base, "https://api.openai.com/v1"); /* openai/ without api_base */
    assert_string_equal(m->backends[0].model, "gpt-3.5-turbo");                /* the provider prefix off */
    assert_string_equal(m->backends[0].api_key_env, "OPENAI_API_KEY");
    assert_int_equal(m->backends[0].rpm, 6);
    assert_string_equal(m->backends[1].model, "facebook/opt-125m");
    assert_int_equal(m->backends[1].rpm, 1440);
    assert_true(m->backends[1].weight == 1440); /* shuffle weights by rpm when no weight is given */
    assert_string_equal(c->master_key, "sk-1234");
    assert_int_equal(n.errors, 0);
    assert_int_equal(n.warnings, 5); /* redis_host/password/port, enable_pre_call_checks, a written master_key */
    ponder_route_config_free(c);

    c = parse_noted(litellm_reliability, &n);
    assert_int_equal(c->settings.num_retries, 3);
    assert_true(c->settings.timeout_s == 10);
    assert_int_equal(c->settings.breaker_failures, 3);
    assert_true(c->settings.breaker_cooldown_s == 30);
    const ponder_route_cfg *r = route_of(c, "zephyr-beta");
    assert_int_equal(r->n_chain, 2);
    assert_string_equal(r->chain[0], "zephyr-beta");
    assert_string_equal(r->chain[1], "gpt-3.5-turbo");
    assert_int_equal(r->n_ctx_chain, 1);
    assert_string_equal(r->ctx_chain[0], "gpt-3.5-turbo-16k");
    r = route_of(c, "gpt-3.5-turbo");
    assert_int_equal(r->n_chain, 1); /* its own chain; only a context-window fallback */
    assert_int_equal(r->n_ctx_chain, 1);
    /* request_timeout is every backend's timeout; the first token may take as long */
    assert_true(c->models[1].backends[0].timeout_s == 10);
    assert_true(c->models[1].backends[0].first_token_timeout_s == 10);
    assert_string_equal(c->models[0].backends[0].model, "HuggingFaceH4/zephyr-7b-beta");
    assert_int_equal(c->models[0].balance, PONDER_BALANCE_SHUFFLE); /* LiteLLM's default */
    assert_int_equal(n.errors + n.warnings, 0);
    ponder_route_config_free(c);

    c = parse_noted(litellm_vllm, &n);
    m = &c->models[0];
    assert_int_equal(m->balance, PONDER_BALANCE_LATENCY);
    assert_string_equal(m->backends[0].model, "meta-llama/Meta-Llama-3-8B-Instruct");
    assert_string_equal(m->backends[0].api_key_env, "VLLM_KEY");
    assert_true(m->backends[0].timeout_s == 60);             /* the deployment's own */
    assert_true(m->backends[0].first_token_timeout_s == 5);  /* its stream_timeout */
    assert_int_equal(c->settings.num_retries, 2);
    assert_int_equal(c->settings.breaker_failures, 1);
    assert_string_equal(c->master_key_env, "LITELLM_MASTER_KEY");
    r = route_of(c, "gpt-4");
    assert_int_equal(r->n_chain, 1);
    assert_string_equal(r->chain[0], "llama3");
    assert_int_equal(n.errors, 0);
    assert_int_equal(n.warnings, 5); /* max_retries, model_info, drop_params, success_callback, database_url */
    ponder_route_config_free(c);
}

/* Every error of a file in one run, each with its line; a misspelt key is still one. */
static void test_all_errors_at_once(void **state)
{
    (void)state;
    static const char yaml[] = "model_list:\n"
                               "  - model_name: a\n"
                               "    litellm_params:\n"
                               "      model: anthropic/claude-3\n"
                               "    tpm: 3\n"
                               "  - model_name: b\n"
                               "    litellm_params:\n"
                               "      model: openai/x\n"
                               "      api_base: http://h/v1\n"
                               "      rpm: many\n"
                               "litellm_settings:\n"
                               "  num_retrys: 3\n"
                               "router_settings:\n"
                               "  routing_strategy: fastest\n"
                               "  timeout: 30\n"
                               "  timeout: 40\n";
    notes n = { 0 };
    ponder_route_config *c = (ponder_route_config *)1;
    ponder_error err;
    assert_int_equal(ponder_route_config_parse_noted(yaml, strlen(yaml), "t.yaml", NULL, count_note, &n, &c, &err),
                     PONDER_ERR_FORMAT);
    assert_null(c);
    assert_int_equal(n.errors, 6);
    assert_non_null(strstr(err.msg, "t.yaml:4: model_list[0].litellm_params: provider 'anthropic' is not supported"));
    assert_non_null(strstr(err.msg, "(and 5 more errors)"));
    /* the plain API says the first and how many */
    assert_int_equal(ponder_route_config_parse(yaml, strlen(yaml), "t.yaml", NULL, &c, &err), PONDER_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "(and 5 more errors)"));
    /* a key given twice in any mapping */
    expect_bad("model_list:\n  - model_name: m\n    backends: [{local: a.gguf, local: b.gguf}]\n", 3,
               "model_list[0].backends[0].local", "given twice");
    /* a long model name is named whole, not cut into a false "used twice" */
    char big[2048];
    char name[400];
    memset(name, 'x', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    snprintf(big, sizeof big, "model_list:\n  - model_name: %sA\n    backends: [{local: a.gguf}]\n"
                              "  - model_name: %sB\n    backends: [{local: b.gguf}]\n", name, name);
    c = parse_ok(big);
    assert_int_equal(c->n_models, 2);
    ponder_route_config_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_file),
        cmocka_unit_test(test_litellm_forms),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_litellm_configs),
        cmocka_unit_test(test_all_errors_at_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
