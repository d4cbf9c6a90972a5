/*
 * test_route_corpus.c — replays fuzz/corpus/route through the fuzz harness
 * (fuzz/route_fuzz.c) in the normal build, so its consistency checks run everywhere; and
 * checks that the seeds named config-good* parse and config-bad* do not.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ponder/route.h"
#include "testutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size); /* fuzz/route_fuzz.c */

static const char *g_dir;

typedef struct counts {
    int good, bad;
} counts;

/* config-good*: the config parses; config-bad*: it is refused (after the prefix byte). */
static void check(const char *name, uint8_t *data, size_t len, void *user)
{
    counts *c = user;
    bool is_good = !strncmp(name, "config-good", 11), is_bad = !strncmp(name, "config-bad", 10);
    if (!is_good && !is_bad)
        return;
    ponder_route_config *cfg = NULL;
    ponder_error err;
    ponder_status st = ponder_route_config_parse((const char *)data + 1, len - 1, name, NULL, &cfg, &err);
    if (is_good && st != PONDER_OK)
        fail_msg("%s refused: %s", name, err.msg);
    if (is_bad && st == PONDER_OK)
        fail_msg("%s accepted", name);
    ponder_route_config_free(cfg);
    c->good += is_good;
    c->bad += is_bad;
}

static void test_replay(void **state)
{
    (void)state;
    counts c = { 0 };
    int n = tu_corpus_replay(g_dir, LLVMFuzzerTestOneInput, check, &c); /* the harness aborts on a broken promise */
    assert_true(n >= 4 && c.good >= 1 && c.bad >= 1);
}

int main(int argc, char **argv)
{
    g_dir = argc > 1 ? argv[1] : "fuzz/corpus/route";
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_replay) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
