/*
 * test_server_corpus.c — replays the request fuzz corpus (fuzz/corpus/server_request)
 * through the fuzz harness in the normal build, so its checks run everywhere. Seeds
 * named bad-* must be rejected as chat and as completions requests; the others must be
 * accepted by the endpoint their name starts with.
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

#include "server/server_internal.h"
#include "testutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size); /* fuzz/server_request_fuzz.c */

static const char *g_dir;

static void test_replay(void **state)
{
    (void)state;
    DIR *d = opendir(g_dir);
    if (!d)
        fail_msg("cannot open corpus directory %s", g_dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", g_dir, e->d_name);
        size_t len;
        char *file = tu_read_file(path, &len);
        assert_non_null(file);
        uint8_t *buf = malloc(len ? len : 1); /* exact size, so sanitizers see over-reads */
        assert_non_null(buf);
        memcpy(buf, file, len);
        free(file);
        assert_int_equal(LLVMFuzzerTestOneInput(buf, len), 0);
        srv_request r;
        http_api_error err;
        bool chat = srv_request_parse(SRV_EP_CHAT, (const char *)buf, len, &r, &err);
        if (chat)
            srv_request_free(&r);
        bool compl = srv_request_parse(SRV_EP_COMPLETION, (const char *)buf, len, &r, &err);
        if (compl)
            srv_request_free(&r);
        if (strncmp(e->d_name, "bad-", 4) == 0) {
            if (chat || compl)
                fail_msg("%s: accepted", e->d_name);
        } else if (strncmp(e->d_name, "chat-", 5) == 0) {
            if (!chat)
                fail_msg("%s: rejected as chat", e->d_name);
        } else if (strncmp(e->d_name, "completion-", 11) == 0) {
            if (!compl)
                fail_msg("%s: rejected as completion", e->d_name);
        }
        free(buf);
        n++;
    }
    closedir(d);
    assert_true(n >= 8);
}

int main(int argc, char **argv)
{
    g_dir = argc > 1 ? argv[1] : "fuzz/corpus/server_request";
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_replay) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
