/*
 * test_atomic_file.c — ponder_atomic_file: a commit replaces the file whole, an abort or a
 * failed write leaves the previous content, no temporary file survives a commit or an
 * abort, a symlink is replaced through, an existing file's mode is kept, /dev/null is
 * written straight through, a killed writer's temporary file goes at the next write.
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ponder/common.h"

static char g_dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/ponder-atomic-XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    DIR *d = opendir(g_dir);
    struct dirent *e;
    char p[512];
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", g_dir, e->d_name);
            unlink(p);
        }
    if (d)
        closedir(d);
    rmdir(g_dir);
    return 0;
}

static const char *path_in(const char *name)
{
    static char p[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", g_dir, name);
    return p[k];
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    static char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* Entries of the directory other than . and .. */
static int n_entries(void)
{
    DIR *d = opendir(g_dir);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d)))
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    if (d)
        closedir(d);
    return n;
}

static void test_commit_replaces(void **state)
{
    (void)state;
    const char *p = path_in("a.txt");
    ponder_error err;
    assert_int_equal(ponder_file_write_atomic(p, "old", 3, &err), PONDER_OK);
    assert_string_equal(slurp(p), "old");
    ponder_atomic_file *f = NULL;
    assert_int_equal(ponder_atomic_file_open(p, &f, &err), PONDER_OK);
    fputs("new content", ponder_atomic_file_stream(f));
    /* Before the commit the old file is still what a reader sees, next to the tmp file. */
    assert_string_equal(slurp(p), "old");
    assert_int_equal(n_entries(), 2);
    assert_int_equal(ponder_atomic_file_commit(f, &err), PONDER_OK);
    assert_string_equal(slurp(p), "new content");
    assert_int_equal(n_entries(), 1);
    unlink(p);
}

static void test_abort_keeps_previous(void **state)
{
    (void)state;
    const char *p = path_in("b.txt");
    ponder_error err;
    assert_int_equal(ponder_file_write_atomic(p, "keep me", 7, &err), PONDER_OK);
    ponder_atomic_file *f = NULL;
    assert_int_equal(ponder_atomic_file_open(p, &f, &err), PONDER_OK);
    fputs("half a fi", ponder_atomic_file_stream(f));
    ponder_atomic_file_abort(f);
    assert_string_equal(slurp(p), "keep me");
    assert_int_equal(n_entries(), 1);
    ponder_atomic_file_abort(NULL);
    unlink(p);
}

static void test_new_file_and_mode(void **state)
{
    (void)state;
    const char *p = path_in("c.bin");
    ponder_error err;
    assert_int_equal(ponder_file_write_atomic(p, "", 0, &err), PONDER_OK);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_size, 0);
    assert_int_equal(chmod(p, 0600), 0);
    assert_int_equal(ponder_file_write_atomic(p, "x", 1, &err), PONDER_OK);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    unlink(p);
}

static void test_symlink_replaced_through(void **state)
{
    (void)state;
    const char *target = path_in("target.txt"), *link = path_in("link.txt");
    ponder_error err;
    assert_int_equal(ponder_file_write_atomic(target, "one", 3, &err), PONDER_OK);
    assert_int_equal(symlink(target, link), 0);
    assert_int_equal(ponder_file_write_atomic(link, "two", 3, &err), PONDER_OK);
    struct stat lst;
    assert_int_equal(lstat(link, &lst), 0);
    assert_true(S_ISLNK(lst.st_mode));
    assert_string_equal(slurp(target), "two");
    assert_int_equal(n_entries(), 2);
    unlink(link);
    unlink(target);
}

static void test_errors(void **state)
{
    (void)state;
    ponder_error err;
    ponder_atomic_file *f = (ponder_atomic_file *)&err; /* must be reset to NULL */
    assert_int_equal(ponder_atomic_file_open(path_in("no-such-dir/x"), &f, &err), PONDER_ERR_IO);
    assert_null(f);
    assert_non_null(strstr(err.msg, "no-such-dir/x"));
    assert_int_equal(ponder_atomic_file_open(g_dir, &f, &err), PONDER_ERR_IO);
    assert_non_null(strstr(err.msg, "directory"));
    assert_int_equal(ponder_atomic_file_open("", &f, &err), PONDER_ERR_INVALID_ARG);
    assert_int_equal(ponder_atomic_file_commit(NULL, &err), PONDER_ERR_INVALID_ARG);
    /* /dev/null is not replaced, just written. */
    assert_int_equal(ponder_file_write_atomic("/dev/null", "x", 1, &err), PONDER_OK);
    struct stat st;
    assert_int_equal(stat("/dev/null", &st), 0);
    assert_true(S_ISCHR(st.st_mode));
}

/* A temporary file of a writer that no longer runs is removed by the next write; one of
 * a live process is left alone. */
static void test_stale_tmp_removed(void **state)
{
    (void)state;
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0)
        _exit(0);
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child); /* reaped: the pid runs nothing */
    char dead[512], dead2[512], live[512], other[512];
    snprintf(dead, sizeof dead, "%s/e.gguf.tmp.%ld", g_dir, (long)child);
    snprintf(dead2, sizeof dead2, "%s/e.gguf.tmp.%ld.3", g_dir, (long)child);
    snprintf(live, sizeof live, "%s/e.gguf.tmp.1", g_dir); /* init: always running */
    snprintf(other, sizeof other, "%s/e.gguf.tmp.%ldx", g_dir, (long)child);
    ponder_error err;
    assert_int_equal(ponder_file_write_atomic(dead, "torn", 4, &err), PONDER_OK);
    assert_int_equal(ponder_file_write_atomic(dead2, "torn", 4, &err), PONDER_OK);
    assert_int_equal(ponder_file_write_atomic(live, "busy", 4, &err), PONDER_OK);
    assert_int_equal(ponder_file_write_atomic(other, "mine", 4, &err), PONDER_OK);
    assert_int_equal(ponder_file_write_atomic(path_in("e.gguf"), "whole", 5, &err), PONDER_OK);
    assert_int_equal(access(dead, F_OK), -1);
    assert_int_equal(access(dead2, F_OK), -1);
    assert_int_equal(access(live, F_OK), 0);
    assert_int_equal(access(other, F_OK), 0);
    unlink(live);
    unlink(other);
    unlink(path_in("e.gguf"));
}

static void test_sync_rename(void **state)
{
    (void)state;
    const char *from = path_in("d.partial"), *to = path_in("d.gguf");
    ponder_error err;
    assert_int_equal(ponder_file_write_atomic(from, "done", 4, &err), PONDER_OK);
    assert_int_equal(ponder_file_sync_rename(from, to, &err), PONDER_OK);
    assert_string_equal(slurp(to), "done");
    assert_int_equal(access(from, F_OK), -1);
    assert_int_equal(ponder_file_sync_rename(from, to, &err), PONDER_ERR_IO);
    unlink(to);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commit_replaces),        cmocka_unit_test(test_abort_keeps_previous),
        cmocka_unit_test(test_new_file_and_mode),      cmocka_unit_test(test_symlink_replaced_through),
        cmocka_unit_test(test_errors),                 cmocka_unit_test(test_sync_rename),
        cmocka_unit_test(test_stale_tmp_removed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
