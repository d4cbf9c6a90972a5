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

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ponder/route.h"
#include "testutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size); /* fuzz/route_fuzz.c */

static const char *g_dir;

static void test_replay(void **state)
{
    (void)state;
    DIR *d = opendir(g_dir);
    if (!d)
        fail_msg("cannot open corpus directory %s", g_dir);
    int n = 0, good = 0, bad = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", g_dir, e->d_name);
        size_t len;
        char *file = tu_read_file(path, &len);
        assert_non_null(file);
        LLVMFuzzerTestOneInput((const uint8_t *)file, len); /* aborts on a broken promise */
        bool is_good = !strncmp(e->d_name, "config-good", 11), is_bad = !strncmp(e->d_name, "config-bad", 10);
        if (is_good || is_bad) {
            ponder_route_config *c = NULL;
            ponder_error err;
            ponder_status st = ponder_route_config_parse(file + 1, len - 1, e->d_name, NULL, &c, &err);
            if (is_good && st != PONDER_OK)
                fail_msg("%s refused: %s", e->d_name, err.msg);
            if (is_bad && st == PONDER_OK)
                fail_msg("%s accepted", e->d_name);
            ponder_route_config_free(c);
            good += is_good;
            bad += is_bad;
        }
        free(file);
        n++;
    }
    closedir(d);
    assert_true(n >= 4 && good >= 1 && bad >= 1);
}

int main(int argc, char **argv)
{
    g_dir = argc > 1 ? argv[1] : "fuzz/corpus/route";
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_replay) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
