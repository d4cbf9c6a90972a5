/*
 * test_alloc_fail.c — every allocation of the GGUF reader, the tokenizer loader and the
 * chat-template parser/renderer failing in turn: each must come back as an error with a
 * message (or, where the allocation was optional, success), never a crash, and — in the
 * ASan build, whose LeakSanitizer runs at exit — never a leak. These are the paths a model
 * file and a request walk before any generation.
 *
 * malloc, calloc and realloc are wrapped at link time (allocfail.h), so the calls of
 * ponder's own code on the test's thread (the paths here start none) are counted and the
 * N-th one fails; libc's and jansson's internal allocations are not wrapped (they are not
 * ours to harden).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "allocfail.h"
#include "ponder/chat.h"
#include "ponder/gguf.h"
#include "ponder/tokenizer.h"
#include "testutil.h"

typedef ponder_status (*step_fn)(void *arg, ponder_error *err);

/* Runs step once to count its allocations, then once with each of them failing. */
static void fail_each(const char *what, step_fn step, void *arg)
{
    ponder_error err = { 0 };
    af_calls = 0;
    af_fail_at = -1;
    if (step(arg, &err) != PONDER_OK)
        fail_msg("%s: fails without injected failures: %s", what, err.msg);
    const long n = af_calls;
    assert_true(n > 0);
    long n_errors = 0;
    for (long i = 0; i < n; i++) {
        memset(&err, 0, sizeof err);
        af_calls = 0;
        af_failed = 0;
        af_fail_at = i;
        const ponder_status st = step(arg, &err);
        af_fail_at = -1;
        if (!af_failed)
            continue; /* the run took another path and allocated less */
        if (st != PONDER_OK) {
            if (err.msg[0] == '\0')
                fail_msg("%s: allocation %ld of %ld failed: status %d with no message", what, i, n, (int)st);
            n_errors++;
        }
    }
    printf("# %s: %ld allocations, each failed in turn: %ld errors, the rest optional\n", what, n, n_errors);
    assert_true(n_errors > 0);
}

static ponder_status open_file(void *arg, ponder_error *err)
{
    ponder_gguf *g = NULL;
    ponder_status st = ponder_gguf_open(arg, &g, err);
    ponder_gguf_free(g);
    return st;
}

static ponder_status make_tokenizer(void *arg, ponder_error *err)
{
    ponder_gguf *g = NULL;
    ponder_tokenizer *tok = NULL;
    ponder_status st = ponder_gguf_open(arg, &g, err);
    if (st == PONDER_OK)
        st = ponder_tokenizer_create(g, &tok, err);
    if (st == PONDER_OK) {
        static const char text[] = "Hello <|im_start|> world, 123! caf\xc3\xa9";
        ponder_token *ids = NULL;
        size_t n = 0;
        char *back = NULL;
        st = ponder_tokenizer_encode(tok, text, sizeof text - 1, true, true, &ids, &n, err);
        if (st == PONDER_OK)
            st = ponder_tokenizer_decode(tok, ids, n, false, true, &back, err);
        free(ids);
        free(back);
    }
    ponder_tokenizer_free(tok);
    ponder_gguf_free(g);
    return st;
}

typedef struct template_case {
    const char *source, *vars;
} template_case;

static ponder_status render_template(void *arg, ponder_error *err)
{
    const template_case *c = arg;
    ponder_chat_template *t = NULL;
    ponder_status st = ponder_chat_template_create(c->source, strlen(c->source), &t, err);
    char *out = NULL;
    size_t n = 0;
    if (st == PONDER_OK)
        st = ponder_chat_render_json(t, c->vars, strlen(c->vars), &out, &n, err);
    free(out);
    ponder_chat_template_free(t);
    return st;
}

static void test_gguf_open(void **state)
{
    (void)state;
    fail_each("gguf open stories260K", open_file, (void *)tu_shared("models/stories260K/stories260K.gguf"));
    fail_each("gguf open qwen2 synthetic", open_file, (void *)tu_shared("models/synthetic/syn-tiny-qwen2-Q8_0.gguf"));
}

static void test_tokenizer(void **state)
{
    (void)state;
    fail_each("tokenizer spm", make_tokenizer, (void *)tu_shared("models/stories260K/stories260K.gguf"));
    fail_each("tokenizer bpe", make_tokenizer, (void *)tu_shared("models/synthetic/syn-tiny-qwen2-Q8_0.gguf"));
}

static void test_chat_template(void **state)
{
    (void)state;
    template_case c = {
        "{%- set ns = namespace(n=0) -%}{%- for m in messages -%}{%- set ns.n = ns.n + 1 -%}"
        "<|im_start|>{{ m['role'] }}\n{{ m['content'] | trim }}<|im_end|>\n{%- endfor -%}"
        "{%- if tools %}{{ tools | tojson }}{% endif -%}{{ [3, 1, 2] | sort | join(',') }}"
        "{%- if add_generation_prompt %}<|im_start|>assistant\n{% endif %}{{ ns.n }}",
        "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": "
        "\" Hi \"}], \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\"}}], "
        "\"add_generation_prompt\": true}",
    };
    fail_each("chat template", render_template, &c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gguf_open),
        cmocka_unit_test(test_tokenizer),
        cmocka_unit_test(test_chat_template),
    };
    af_armed = true; /* cmocka runs the tests on this thread */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
