/*
 * test_tokenizer_pretok.c — pre-tokenizers and prompts beyond the .inp/.out files:
 *   - every supported tokenizer.ggml.pre name compiles and splits a mixed text into pieces
 *     that cover it exactly;
 *   - hand-derived splits for patterns the reference files do not cover (llama3's digit
 *     triples and case-insensitive contractions, qwen2's single digits, tekken's case runs,
 *     bloom/poro's punctuation gaps), worked out from llama.cpp's regexes;
 *   - the prompt_tokens of every shared/reference/logits JSON whose model is shipped
 *     (llama.cpp at c392e509; covers qwen2's pre-tokenizer and gemma2's
 *     add_space_prefix = false).
 */
#include "ponder/gguf.h"
#include "ponder/tokenizer.h"
#include "testutil.h"
#include "tokenizer/tok_internal.h"

#include <jansson.h>

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void split_with(const char *pre, const char *text, tok_spans *out)
{
    const tok_pre_def *def = tok_pre_find(pre, strlen(pre));
    if (!def)
        fail_msg("pre-tokenizer '%s' not found", pre);
    tok_pretok p;
    ponder_error err = {0};
    if (tok_pretok_compile(&p, def, &err) != PONDER_OK)
        fail_msg("%s", err.msg);
    if (tok_pretok_split(&p, text, strlen(text), out, &err) != PONDER_OK)
        fail_msg("%s", err.msg);
    tok_pretok_free(&p);
}

static void test_all_compile(void **state)
{
    (void)state;
    const char *text = "Hello  world, I'VE 1234567 \xE4\xB8\xAD\xE6\x96\x87 caf\xC3\xA9 ~~ \xF0\x9F\xA6\x99\r\n\n \t";
    char names[2048];
    snprintf(names, sizeof names, "%s", tok_pre_supported());
    int n_names = 0;
    for (char *save = NULL, *name = strtok_r(names, ", ", &save); name; name = strtok_r(NULL, ", ", &save)) {
        tok_spans sp = {0};
        split_with(name, text, &sp);
        size_t at = 0;
        for (size_t i = 0; i < sp.n; i++) {
            assert_int_equal(sp.v[i].off, at); /* pieces are contiguous and non-empty */
            assert_true(sp.v[i].len > 0);
            at += sp.v[i].len;
        }
        assert_int_equal(at, strlen(text));
        free(sp.v);
        n_names++;
    }
    assert_true(n_names >= 30);
}

static void expect_split(const char *pre, const char *text, const char *const *want, size_t n_want)
{
    tok_spans sp = {0};
    split_with(pre, text, &sp);
    bool same = sp.n == n_want;
    for (size_t i = 0; same && i < n_want; i++)
        same = sp.v[i].len == strlen(want[i]) && memcmp(text + sp.v[i].off, want[i], sp.v[i].len) == 0;
    if (!same) {
        for (size_t i = 0; i < sp.n; i++)
            print_message("  %s piece %zu: '%.*s'\n", pre, i, (int)sp.v[i].len, text + sp.v[i].off);
        fail_msg("%s: split of '%s' differs", pre, text);
    }
    free(sp.v);
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void test_known_splits(void **state)
{
    (void)state;
    /* "  world": \s+(?!\S) leaves the last space to the word; digits go by three; the
     * punctuation run takes the newlines after it; contractions ignore case */
    static const char *const LLAMA3[] = {"Hello", " ", " world", " ", "123", "456", "7", "!!\n\n", " I", "'VE"};
    expect_split("llama3", "Hello  world 1234567!!\n\n I'VE", LLAMA3, N(LLAMA3));
    expect_split("llama-bpe", "Hello  world 1234567!!\n\n I'VE", LLAMA3, N(LLAMA3));

    static const char *const QWEN2[] = {"abc", " ", "1", "2", "\n\n", "x"};
    expect_split("qwen2", "abc 12\n\nx", QWEN2, N(QWEN2));

    /* upper* lower+ first: "FOObar" stays whole */
    static const char *const TEKKEN[] = {"Hello", "World", " FOObar", " ABC"};
    expect_split("tekken", "HelloWorld FOObar ABC", TEKKEN, N(TEKKEN));

    static const char *const BLOOM[] = {"hello", ",", " world", "!"};
    expect_split("bloom", "hello, world!", BLOOM, N(BLOOM));

    /* default: punctuation runs first, then GPT-2 (" 1234"), then \p{N}+ leaves the space
     * on its own, then the digit run is cut into threes */
    static const char *const DEFAULT[] = {"a", "...", " ", "123", "4"};
    expect_split("default", "a... 1234", DEFAULT, N(DEFAULT));
}

/* ---- prompts recorded with the logits references ---- */

static void test_logits_prompts(void **state)
{
    (void)state;
    char dir_path[1024]; /* tu_shared's buffers rotate */
    snprintf(dir_path, sizeof dir_path, "%s", tu_shared("reference/logits"));
    DIR *dir = opendir(dir_path);
    assert_non_null(dir);
    int n_checked = 0;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        size_t nl = strlen(de->d_name);
        if (nl < 5 || strcmp(de->d_name + nl - 5, ".json") != 0)
            continue;
        char path[1024 + 256 + 2];
        snprintf(path, sizeof path, "%s/%s", dir_path, de->d_name);
        json_error_t jerr;
        json_t *root = json_load_file(path, 0, &jerr);
        if (!root)
            fail_msg("%s: %s", path, jerr.text);
        const char *model = json_string_value(json_object_get(root, "model"));
        const char *prompt = json_string_value(json_object_get(root, "prompt"));
        json_t *want = json_object_get(root, "prompt_tokens");
        json_t *ps = json_object_get(root, "parse_special");
        if (!model || !prompt || !json_is_array(want) || strncmp(model, "shared/", 7) != 0 ||
            !tu_shared_exists(model + 7)) {
            json_decref(root); /* on-demand fixture not made */
            continue;
        }

        ponder_error err = {0};
        ponder_gguf *g = NULL;
        ponder_tokenizer *tok = NULL;
        if (ponder_gguf_open(tu_shared(model + 7), &g, &err) != PONDER_OK)
            fail_msg("%s", err.msg);
        if (ponder_tokenizer_create(g, &tok, &err) != PONDER_OK)
            fail_msg("%s: %s", model, err.msg);
        ponder_gguf_free(g);
        ponder_token *ids = NULL;
        size_t n = 0;
        if (ponder_tokenizer_encode(tok, prompt, strlen(prompt), true, json_is_true(ps), &ids, &n, &err) !=
            PONDER_OK)
            fail_msg("%s", err.msg);
        bool same = n == json_array_size(want);
        for (size_t i = 0; same && i < n; i++)
            same = ids[i] == json_integer_value(json_array_get(want, i));
        if (!same)
            fail_msg("%s: prompt '%s' tokenizes differently (%zu tokens, want %zu)", de->d_name, prompt, n,
                     json_array_size(want));
        free(ids);
        ponder_tokenizer_free(tok);
        json_decref(root);
        n_checked++;
    }
    closedir(dir);
    print_message("  %d logits prompts checked\n", n_checked);
    assert_true(n_checked >= 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_compile),
        cmocka_unit_test(test_known_splits),
        cmocka_unit_test(test_logits_prompts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
