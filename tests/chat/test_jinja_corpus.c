/*
 * test_jinja_corpus.c — replays the Jinja fuzz seeds (fuzz/corpus/jinja) through the fuzz
 * harness in the normal test build, so its checks run everywhere, not only in clang fuzz
 * builds; then holds each seed to what its name promises, through the public API:
 * render-* parse and render (real model templates with their reference contexts),
 * limit-* are refused by a cap (nesting, range size, macro and loop recursion) quickly,
 * bad-* fail with a message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ponder/chat.h"
#include "testutil.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);            /* fuzz/jinja_fuzz.c */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size); /* fuzz/jinja_fuzz.c */

static const char *g_dir;

/* Parses and renders a seed as the harness splits it; the status of the first failing step. */
static ponder_status parse_and_render(const char *file, size_t len, ponder_error *err)
{
    const char *nul = memchr(file, 0, len);
    const size_t src_len = nul ? (size_t)(nul - file) : len;
    static const char vars[] = "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"add_generation_prompt\": true}";
    ponder_chat_template *t = NULL;
    ponder_status st = ponder_chat_template_create(file, src_len, &t, err);
    if (st != PONDER_OK)
        return st;
    char *out = NULL;
    size_t n = 0;
    st = nul ? ponder_chat_render_json(t, nul + 1, len - src_len - 1, &out, &n, err)
             : ponder_chat_render_json(t, vars, strlen(vars), &out, &n, err);
    free(out);
    ponder_chat_template_free(t);
    return st;
}

typedef struct counts {
    int n_render, n_limit, n_bad;
} counts;

/* render-*: renders; limit-*: a cap refuses it; bad-*: refused as malformed. */
static void check(const char *name, uint8_t *data, size_t len, void *user)
{
    counts *c = user;
    ponder_error err = { 0 };
    const ponder_status st = parse_and_render((const char *)data, len, &err);
    if (strncmp(name, "render-", 7) == 0) {
        if (st != PONDER_OK)
            fail_msg("%s: %s", name, err.msg);
        c->n_render++;
    } else if (strncmp(name, "limit-", 6) == 0) {
        if (st == PONDER_OK)
            fail_msg("%s: rendered, but a cap should have refused it", name);
        assert_true(err.msg[0] != '\0');
        c->n_limit++;
    } else if (strncmp(name, "bad-", 4) == 0) {
        if (st == PONDER_OK)
            fail_msg("%s: rendered, but it is malformed", name);
        assert_true(err.msg[0] != '\0');
        c->n_bad++;
    }
}

static void test_replay(void **state)
{
    (void)state;
    int argc = 0;
    char **argv = NULL;
    LLVMFuzzerInitialize(&argc, &argv);
    counts c = { 0 };
    assert_true(tu_corpus_replay(g_dir, LLVMFuzzerTestOneInput, check, &c) >= 0);
    assert_true(c.n_render >= 5);
    assert_true(c.n_limit >= 4);
    assert_true(c.n_bad >= 3);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    g_dir = argv[1];
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_replay) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
