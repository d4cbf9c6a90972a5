/*
 * test_hub_names.c — the hub's names without a network: hf.co/OWNER/REPO[:QUANT] and
 * file forms, URLs, catalogue names (every entry parses), quant tokens in real file
 * names from the Hub (bartowski, mradermacher, gguf-my-repo, TheBloke spellings), the
 * default choice, split files, and the store lookup on a temporary folder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hub/hub_internal.h"
#include "ponder/route.h"

static void test_parse_hf(void **state)
{
    (void)state;
    ponder_hub_ref r;
    ponder_error err;
    assert_int_equal(ponder_hub_parse("hf.co/bartowski/SmolLM2-135M-Instruct-GGUF:Q8_0", &r, &err), PONDER_OK);
    assert_int_equal(r.source, PONDER_HUB_SOURCE_HF);
    assert_string_equal(r.owner, "bartowski");
    assert_string_equal(r.repo, "SmolLM2-135M-Instruct-GGUF");
    assert_string_equal(r.quant, "Q8_0");
    assert_string_equal(r.file, "");

    const char *same[] = {"huggingface.co/a/b.c-d_e", "https://huggingface.co/a/b.c-d_e", "https://hf.co/a/b.c-d_e"};
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        assert_int_equal(ponder_hub_parse(same[i], &r, &err), PONDER_OK);
        assert_string_equal(r.owner, "a");
        assert_string_equal(r.repo, "b.c-d_e");
        assert_string_equal(r.quant, "");
    }
    assert_int_equal(ponder_hub_parse("hf.co/ggml-org/models/tinyllamas/stories260K.gguf", &r, &err), PONDER_OK);
    assert_string_equal(r.repo, "models");
    assert_string_equal(r.file, "tinyllamas/stories260K.gguf");

    const char *bad[] = {"hf.co/", "hf.co/owner", "hf.co/a/b:", "hf.co/a/b/../x.gguf", "hf.co/a/b/readme.md",
                         "hf.co/a/b:Q4 K", "hf.co/../b", "hf.co/a/b//x.gguf", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ponder_error_clear(&err);
        assert_int_equal(ponder_hub_parse(bad[i], &r, &err), PONDER_ERR_INVALID_ARG);
        assert_true(err.msg[0] != '\0');
    }
}

static void test_parse_url_and_catalogue(void **state)
{
    (void)state;
    ponder_hub_ref r;
    ponder_error err;
    assert_int_equal(ponder_hub_parse("https://example.com/m/x-Q4_K_M.gguf?download=1", &r, &err), PONDER_OK);
    assert_int_equal(r.source, PONDER_HUB_SOURCE_URL);
    assert_int_equal(ponder_hub_parse("https://huggingface.co/a/b/resolve/main/f.gguf", &r, &err), PONDER_OK);
    assert_int_equal(r.source, PONDER_HUB_SOURCE_URL);
    assert_int_equal(ponder_hub_parse("http://example.com/readme", &r, &err), PONDER_ERR_INVALID_ARG);
    assert_int_equal(ponder_hub_parse("http://example.com/a b.gguf", &r, &err), PONDER_ERR_INVALID_ARG);

    /* Every catalogue entry parses to a repository, and a bare family means its first. */
    const ponder_hub_catalogue_entry *e;
    int n = 0;
    for (int i = 0; (e = ponder_hub_catalogue_at(i)); i++, n++) {
        assert_int_equal(ponder_hub_parse(e->name, &r, &err), PONDER_OK);
        assert_int_equal(r.source, PONDER_HUB_SOURCE_HF);
        assert_string_equal(r.alias, e->name);
        assert_true(r.quant[0] || r.file[0]);
        assert_non_null(e->summary);
    }
    assert_true(n >= 4);
    assert_int_equal(ponder_hub_parse("smollm2", &r, &err), PONDER_OK);
    assert_string_equal(r.alias, "smollm2:135m");
    assert_int_equal(ponder_hub_parse("SmolLM2:135M", &r, &err), PONDER_OK);
    assert_string_equal(r.quant, "Q8_0");
    assert_int_equal(ponder_hub_parse("smollm2:135m-q4_k_m", &r, &err), PONDER_OK);
    assert_string_equal(r.repo, "SmolLM2-135M-Instruct-GGUF");
    assert_string_equal(r.quant, "q4_k_m");
    assert_int_equal(ponder_hub_parse("stories:260k-q8_0", &r, &err), PONDER_ERR_NOT_FOUND); /* a fixed file */
    assert_int_equal(ponder_hub_parse("mistral:7b", &r, &err), PONDER_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "smollm2:135m"));

    assert_true(ponder_hub_is_name("hf.co/a/b"));
    assert_true(ponder_hub_is_name("smollm2:135m"));
    assert_true(ponder_hub_is_name("https://x/y.gguf"));
    assert_false(ponder_hub_is_name("models/x.gguf"));
    assert_false(ponder_hub_is_name("arith-s1"));
}

static void test_tokens(void **state)
{
    (void)state;
    assert_true(hub_has_token("SmolLM2-135M-Instruct-Q4_K_M.gguf", "q4_k_m"));
    assert_false(hub_has_token("SmolLM2-135M-Instruct-Q4_K_M.gguf", "Q4_K"));
    assert_false(hub_has_token("SmolLM2-135M-Instruct-Q4_K_M.gguf", "K_M"));
    assert_true(hub_has_token("smollm2-135m-instruct-q8_0.gguf", "Q8_0"));
    assert_true(hub_has_token("SmolLM2-135M-Instruct.Q8_0.gguf", "Q8_0"));
    assert_true(hub_has_token("tinyllama-1.1b-chat-v1.0.Q4_K_M.gguf", "Q4_K_M"));
    assert_false(hub_has_token("Q8_0x.gguf", "Q8_0"));

    char q[64];
    struct {
        const char *file, *quant;
    } cases[] = {
        {"SmolLM2-135M-Instruct-Q4_K_M.gguf", "Q4_K_M"}, {"smollm2-135m-instruct-q8_0.gguf", "Q8_0"},
        {"SmolLM2-135M-Instruct.IQ4_XS.gguf", "IQ4_XS"}, {"Qwen2.5-0.5B-Instruct-f16.gguf", "F16"},
        {"Llama-3.2-1B-Instruct-Q4_0_4_4.gguf", "Q4_0_4_4"}, {"gemma-2-2b-it-BF16.gguf", "BF16"},
        {"dir/Qwen2.5-0.5B-Instruct-Q2_K_L.gguf", "Q2_K_L"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_true(hub_quant_of(cases[i].file, q, sizeof q));
        assert_string_equal(q, cases[i].quant);
    }
    assert_false(hub_quant_of("stories260K.gguf", q, sizeof q));
    assert_false(hub_quant_of("Qwen2.5-0.5B.gguf", q, sizeof q));

    assert_true(hub_is_split("Llama-70B-Q4_K_M-00001-of-00002.gguf"));
    assert_false(hub_is_split("Llama-70B-Q4_K_M.gguf"));
    assert_false(hub_is_split("x-0001-of-00002.gguf"));
}

static void test_choose(void **state)
{
    (void)state;
    const char *files[] = {"m-IQ3_M.gguf", "m-Q2_K.gguf", "m-Q8_0.gguf", "m-Q4_K_M.gguf", "mmproj-m-f16.gguf"};
    assert_int_equal(hub_choose(files, 5, ""), 3);
    assert_int_equal(hub_choose(files, 5, "q8_0"), 2);
    assert_int_equal(hub_choose(files, 5, "Q5_K_M"), -1);
    const char *no_default[] = {"mmproj-x.gguf", "m-IQ3_M.gguf"};
    assert_int_equal(hub_choose(no_default, 2, NULL), 1);
    const char *only_proj[] = {"mmproj-x.gguf"};
    assert_int_equal(hub_choose(only_proj, 1, ""), -1);
    const char *split[] = {"m-Q4_K_M-00001-of-00002.gguf", "m-Q4_K_M.gguf"};
    assert_int_equal(hub_choose(split, 2, "Q4_K_M"), 1);

    char f[256];
    assert_true(hub_url_file("https://h/a/b/x%20y-Q4_0.gguf?x=1#f", f, sizeof f));
    assert_string_equal(f, "x_20y-Q4_0.gguf");
    assert_false(hub_url_file("https://h/", f, sizeof f));
    assert_false(hub_url_file("https://h/.gguf", f, sizeof f));
}

/* find / list / remove on a temporary store with hand-made files. */
static void touch(const char *path, const char *content)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

static void test_store(void **state)
{
    (void)state;
    char dir[] = "/tmp/ponder-hub-store-XXXXXX";
    assert_non_null(mkdtemp(dir));
    ponder_hub_params p = ponder_hub_params_default();
    p.models_dir = dir;
    ponder_error err;
    char repo[512], path[1024], out[1024];
    snprintf(repo, sizeof repo, "%s/hf.co/bartowski/SmolLM2-135M-Instruct-GGUF", dir);
    assert_int_equal(hub_mkdirs(repo, &err), PONDER_OK);
    snprintf(path, sizeof path, "%s/SmolLM2-135M-Instruct-Q8_0.gguf", repo);
    touch(path, "q8");
    snprintf(path, sizeof path, "%s/SmolLM2-135M-Instruct-Q4_K_M.gguf.partial", repo);
    touch(path, "part");
    snprintf(path, sizeof path, "%s/mine.gguf", dir);
    touch(path, "mine");

    assert_int_equal(ponder_hub_find("smollm2:135m", &p, out, sizeof out, &err), PONDER_OK);
    assert_non_null(strstr(out, "SmolLM2-135M-Instruct-Q8_0.gguf"));
    assert_int_equal(ponder_hub_find("hf.co/bartowski/SmolLM2-135M-Instruct-GGUF", &p, out, sizeof out, &err),
                     PONDER_OK); /* the only complete file */
    assert_int_equal(ponder_hub_find("mine", &p, out, sizeof out, &err), PONDER_OK);
    assert_int_equal(ponder_hub_find("smollm2:135m-q4_k_m", &p, out, sizeof out, &err), PONDER_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "ponder pull smollm2:135m-q4_k_m"));
    assert_int_equal(ponder_hub_find("other", &p, out, sizeof out, &err), PONDER_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "PONDER_MODELS"));

    /* The router's config takes the same names for local backends; a file beside the
     * config still wins over the store. */
    setenv("PONDER_MODELS", dir, 1);
    const char *yaml = "model_list:\n"
                       "  - model_name: a\n    backends:\n      - local: smollm2:135m\n"
                       "  - model_name: b\n    backends:\n      - local: hf.co/bartowski/SmolLM2-135M-Instruct-GGUF:Q8_0\n"
                       "  - model_name: c\n    backends:\n      - local: mine\n"
                       "  - model_name: d\n    backends:\n      - local: mine.gguf\n"
                       "  - model_name: e\n    backends:\n      - local: sub/absent.gguf\n";
    ponder_route_config *cfg = NULL;
    assert_int_equal(ponder_route_config_parse(yaml, strlen(yaml), "t.yaml", "/nonexistent", &cfg, &err), PONDER_OK);
    assert_non_null(strstr(cfg->models[0].backends[0].path, "/hf.co/bartowski/SmolLM2-135M-Instruct-GGUF/"));
    assert_string_equal(cfg->models[0].backends[0].path, cfg->models[1].backends[0].path);
    assert_non_null(strstr(cfg->models[2].backends[0].path, "/mine.gguf"));
    assert_string_equal(cfg->models[2].backends[0].path, cfg->models[3].backends[0].path);
    assert_string_equal(cfg->models[4].backends[0].path, "/nonexistent/sub/absent.gguf");
    ponder_route_config_free(cfg);
    assert_int_equal(ponder_route_config_parse(yaml, strlen(yaml), "t.yaml", dir, &cfg, &err), PONDER_OK);
    snprintf(path, sizeof path, "%s/mine.gguf", dir);
    assert_string_equal(cfg->models[3].backends[0].path, path); /* beside the config */
    ponder_route_config_free(cfg);
    unsetenv("PONDER_MODELS");

    ponder_hub_entry *v = NULL;
    size_t n = 0;
    assert_int_equal(ponder_hub_list(&p, &v, &n, &err), PONDER_OK);
    assert_int_equal(n, 3);
    assert_string_equal(v[0].name, "hf.co/bartowski/SmolLM2-135M-Instruct-GGUF:Q4_K_M");
    assert_true(v[0].partial);
    assert_string_equal(v[1].name, "hf.co/bartowski/SmolLM2-135M-Instruct-GGUF:Q8_0");
    assert_string_equal(v[1].alias, "smollm2:135m");
    assert_int_equal(v[1].bytes, 2);
    assert_string_equal(v[2].name, "mine");
    free(v);

    assert_int_equal(ponder_hub_remove("smollm2:135m-q4_k_m", &p, out, sizeof out, &err), PONDER_OK); /* the partial */
    assert_int_equal(ponder_hub_remove("smollm2:135m", &p, out, sizeof out, &err), PONDER_OK);
    assert_int_equal(ponder_hub_remove("mine", &p, out, sizeof out, &err), PONDER_OK);
    assert_int_equal(ponder_hub_list(&p, &v, &n, &err), PONDER_OK);
    assert_int_equal(n, 0);
    free(v);
    snprintf(path, sizeof path, "%s/hf.co", dir);
    assert_int_equal(access(path, F_OK), -1); /* pruned */
    assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_hf), cmocka_unit_test(test_parse_url_and_catalogue), cmocka_unit_test(test_tokens),
        cmocka_unit_test(test_choose),   cmocka_unit_test(test_store),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
