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
    const ponder_route_cfg *rt = ponder_route_config_find(c, "small", &scratch);
    assert_non_null(rt);
    assert_int_equal(rt->n_chain, 2); /* the model itself first, then its fallback */
    assert_string_equal(rt->chain[0], "small");
    assert_string_equal(rt->chain[1], "big");
    rt = ponder_route_config_find(c, "chat", &scratch);
    assert_int_equal(rt->n_chain, 2);
    assert_string_equal(rt->chain[0], "big");
    assert_string_equal(rt->chain[1], "small");
    rt = ponder_route_config_find(c, "big", &scratch); /* no route: the model alone */
    assert_int_equal(rt->n_chain, 1);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_file),
        cmocka_unit_test(test_litellm_forms),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_load_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
