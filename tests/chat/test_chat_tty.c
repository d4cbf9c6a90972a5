/*
 * test_chat_tty.c — `ponder chat` on a terminal (a pseudo-terminal from forkpty), keys as a
 * person types them: Ctrl-C on a half-typed line drops the line and keeps the chat (the
 * next line is answered alone), Ctrl-C on an empty prompt says how to leave, a second one
 * in a row leaves with status 0. Skips (exit 77) where no pty can be had.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

typedef struct term {
    pid_t pid;
    int fd;
    char out[1 << 16];
    size_t n;
} term;

/* Reads what the program writes until `want` appears or ms pass; true if it appeared. */
static bool wait_for(term *t, const char *want, int ms)
{
    for (int waited = 0; waited < ms; waited += 50) {
        if (strstr(t->out, want))
            return true;
        struct pollfd p = { t->fd, POLLIN, 0 };
        if (poll(&p, 1, 50) > 0) {
            ssize_t r = read(t->fd, t->out + t->n, sizeof t->out - 1 - t->n);
            if (r > 0) {
                t->n += (size_t)r;
                t->out[t->n] = '\0';
            } else if (r < 0 && errno != EINTR && errno != EAGAIN) {
                break; /* the program exited: EIO */
            }
        }
    }
    return strstr(t->out, want) != NULL;
}

static void type(term *t, const char *keys)
{
    assert_int_equal(write(t->fd, keys, strlen(keys)), (ssize_t)strlen(keys));
    usleep(150 * 1000); /* as a person would: each key batch is read on its own */
}

static void test_ctrl_c(void **state)
{
    (void)state;
    const char *bin = getenv("PONDER_BIN");
    assert_non_null(bin);
    const char *model = tu_shared("models/stories260K/stories260K.gguf");
    term *t = calloc(1, sizeof *t);
    struct winsize ws = { .ws_row = 40, .ws_col = 200 };
    t->pid = forkpty(&t->fd, NULL, NULL, &ws);
    if (t->pid < 0) {
        free(t);
        skip();
        return;
    }
    if (t->pid == 0) {
        setenv("TERM", "dumb", 1);
        setenv("HOME", "/nonexistent", 1); /* no ~/.editrc of the machine's */
        execl(bin, bin, "chat", "-m", model, "--chatml", "-n", "6", "--temp", "0", "-t", "1", (char *)NULL);
        _exit(127);
    }
    assert_true(wait_for(t, "> ", 20000));
    type(t, "half typed line");
    type(t, "\x03");
    assert_true(wait_for(t, "^C", 5000));
    type(t, "Tell me a story\r");
    /* one answer, then the prompt again; the dropped text was never sent */
    const size_t before = t->n;
    assert_true(wait_for(t, "story", 5000));
    size_t seen = t->n;
    for (int i = 0; i < 100 && !strstr(t->out + before, "\n> "); i++) {
        wait_for(t, "\n> ", 200);
        if (t->n == seen && strstr(t->out + before, "\n> "))
            break;
        seen = t->n;
    }
    assert_non_null(strstr(t->out + before, "\n> "));
    type(t, "\x03");
    assert_true(wait_for(t, "(Ctrl-C again, Ctrl-D or /exit to leave)", 5000));
    type(t, "\x03");
    int status = 0;
    for (int i = 0; i < 100 && waitpid(t->pid, &status, WNOHANG) == 0; i++) {
        wait_for(t, "\x01", 50); /* keep draining the pty */
    }
    if (!WIFEXITED(status)) {
        kill(t->pid, SIGKILL);
        waitpid(t->pid, &status, 0);
        fail_msg("ponder chat did not leave on the second Ctrl-C; it wrote:\n%s", t->out);
    }
    assert_int_equal(WEXITSTATUS(status), 0);
    /* the half-typed text was dropped, not sent as a message later */
    assert_null(strstr(t->out, "half typed lineTell"));
    close(t->fd);
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_ctrl_c) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
