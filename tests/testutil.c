/* testutil.c — see testutil.h. */
#include "testutil.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

const char *tu_shared(const char *rel)
{
    static char slots[8][4096];
    static int next;
    char *buf = slots[next++ % 8];
    const char *root = getenv("PONDER_SHARED");
    if (!root || !*root)
        root = getenv("PONDER_SHARED_DEFAULT");
    if (!root || !*root)
        root = "../shared";
    snprintf(buf, sizeof slots[0], "%s/%s", root, rel);
    return buf;
}

bool tu_shared_exists(const char *rel)
{
    return access(tu_shared(rel), R_OK) == 0;
}

char *tu_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return NULL;
    }
    long size = ftell(f);
    if (size < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return NULL;
    }
    char *buf = malloc((size_t)size + 1);
    if (buf && fread(buf, 1, (size_t)size, f) != (size_t)size) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[size] = '\0';
        if (len)
            *len = (size_t)size;
    }
    return buf;
}

const char *tu_path_in(const char *dir, const char *name)
{
    static char slots[32][512];
    static int next;
    char *buf = slots[next++ % 32];
    snprintf(buf, sizeof slots[0], "%s/%s", dir, name);
    return buf;
}

int tu_count_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

int tu_corpus_replay(const char *dir, int (*fuzz_one)(const uint8_t *data, size_t size), tu_corpus_fn check,
                     void *user)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "cannot open corpus directory %s\n", dir);
        return -1;
    }
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t len = 0;
        char *file = tu_read_file(path, &len);
        uint8_t *buf = file ? malloc(len ? len : 1) : NULL;
        if (!buf) {
            fprintf(stderr, "%s: cannot read\n", path);
            free(file);
            n = -1;
            break;
        }
        memcpy(buf, file, len);
        free(file);
        if (fuzz_one && fuzz_one(buf, len) != 0) {
            fprintf(stderr, "%s: the harness returned non-zero\n", path);
            free(buf);
            n = -1;
            break;
        }
        if (check)
            check(e->d_name, buf, len, user);
        free(buf);
        n++;
    }
    closedir(d);
    return n;
}

const char *tu_model_path(const char *ref_path)
{
    static char slots[8][4096];
    static int next;
    char *buf = slots[next++ % 8];
    const char *rel = ref_path;
    if (strncmp(rel, "shared/", 7) == 0)
        rel += 7;
    if (tu_shared_exists(rel)) {
        snprintf(buf, sizeof slots[0], "%s", tu_shared(rel));
        return buf;
    }
    const char *base = strrchr(ref_path, '/');
    base = base ? base + 1 : ref_path;
    const char *dirs[] = {getenv("PONDER_FIXTURES"), getenv("PONDER_FIXTURES_DEFAULT")};
    for (int i = 0; i < 2; i++) {
        if (!dirs[i] || !*dirs[i])
            continue;
        snprintf(buf, sizeof slots[0], "%s/%s", dirs[i], base);
        if (access(buf, R_OK) == 0)
            return buf;
    }
    return NULL;
}

tu_cli_result tu_run_cli(const char *stdin_path, const char *const *args)
{
    tu_cli_result r = { .status = -1 };
    const char *bin = getenv("PONDER_BIN");
    if (!bin || !*bin) {
        fprintf(stderr, "PONDER_BIN is not set (run through ctest)\n");
        return r;
    }
    char out_path[] = "/tmp/ponder-test-out-XXXXXX", err_path[] = "/tmp/ponder-test-err-XXXXXX";
    int out_fd = mkstemp(out_path), err_fd = mkstemp(err_path);
    if (out_fd < 0 || err_fd < 0)
        return r;
    const char *argv[64];
    int argc = 0;
    argv[argc++] = bin;
    for (int i = 0; args[i] && argc < 63; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out_fd, STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&fa, err_fd, STDERR_FILENO);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, stdin_path ? stdin_path : "/dev/null", O_RDONLY, 0);
    pid_t pid;
    int rc = posix_spawn(&pid, bin, &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc == 0) {
        int ws = 0;
        if (waitpid(pid, &ws, 0) == pid && WIFEXITED(ws))
            r.status = WEXITSTATUS(ws);
    }
    close(out_fd);
    close(err_fd);
    r.out = tu_read_file(out_path, &r.out_len);
    r.err = tu_read_file(err_path, NULL);
    unlink(out_path);
    unlink(err_path);
    return r;
}

void tu_cli_result_free(tu_cli_result *r)
{
    free(r->out);
    free(r->err);
}
