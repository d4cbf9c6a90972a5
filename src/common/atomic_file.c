/*
 * atomic_file.c — crash-safe file replacement: write "<path>.tmp.<pid>" next to the
 * destination, fsync it, rename it over the destination, fsync the directory.
 *
 * rename(2) within one directory is atomic, so a reader, a kill -9 or a power loss at any
 * moment sees the previous file (or none), never a torn one; the fsync before the rename
 * keeps the data from reaching the name before the bytes reach the disk (ext4's
 * delayed allocation would otherwise allow a zero-length file after a crash), and the
 * directory fsync makes the rename itself durable. A killed writer leaves its
 * ".tmp.<pid>" behind (nothing reads those); the next write of the same file removes it.
 */
#include "ponder/common.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct ponder_atomic_file {
    FILE *f;
    char *dest; /* final path (a symlink's target, so the link survives) */
    char *tmp;  /* NULL when writing straight to a non-regular destination */
};

/* The directory part of path ("." when it has none) into out[cap]. */
static void dir_of(const char *path, char *out, size_t cap)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(out, cap, ".");
    else if (slash == path)
        snprintf(out, cap, "/");
    else
        snprintf(out, cap, "%.*s", (int)(slash - path), path);
}

static ponder_status sync_dir(const char *path, ponder_error *err)
{
    char dir[PATH_MAX];
    dir_of(path, dir, sizeof dir);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return ponder_error_set(err, PONDER_ERR_IO, "%s: cannot open its directory to sync it: %s", path,
                                strerror(errno));
    /* Some file systems cannot fsync a directory (EINVAL); the rename is still atomic. */
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    if (rc != 0 && e != EINVAL && e != ENOTSUP)
        return ponder_error_set(err, PONDER_ERR_IO, "%s: cannot sync its directory: %s", path, strerror(e));
    return PONDER_OK;
}

ponder_status ponder_file_sync_rename(const char *from, const char *to, ponder_error *err)
{
    if (!from || !to)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "ponder_file_sync_rename: NULL argument");
    int fd = open(from, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ponder_error_set(err, PONDER_ERR_IO, "%s: %s", from, strerror(errno));
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    if (rc != 0)
        return ponder_error_set(err, PONDER_ERR_IO, "%s: cannot sync to disk: %s", from, strerror(e));
    if (rename(from, to) != 0)
        return ponder_error_set(err, PONDER_ERR_IO, "%s: cannot rename %s into place: %s", to, from,
                                strerror(errno));
    return sync_dir(to, err);
}

void ponder_atomic_file_abort(ponder_atomic_file *a)
{
    if (!a)
        return;
    if (a->f)
        fclose(a->f);
    if (a->tmp)
        unlink(a->tmp);
    free(a->tmp);
    free(a->dest);
    free(a);
}

/* Removes "<dest>.tmp.<pid>[.<k>]" files left by writers that were killed (their pid no
 * longer runs): a killed multi-GB quantize must not leave its bytes behind for good. A
 * pid reused by another process keeps its file; that is only disk space, never a wrong
 * file under the final name. */
static void remove_stale(const char *dest)
{
    char dir[PATH_MAX];
    dir_of(dest, dir, sizeof dir);
    const char *slash = strrchr(dest, '/');
    const char *base = slash ? slash + 1 : dest;
    size_t bn = strlen(base);
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, base, bn) != 0 || strncmp(e->d_name + bn, ".tmp.", 5) != 0)
            continue;
        char *end = NULL;
        long pid = strtol(e->d_name + bn + 5, &end, 10);
        if (pid <= 0 || pid == (long)getpid() || (*end && (*end != '.' || !isdigit((unsigned char)end[1]))))
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        char path[PATH_MAX + 256];
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) < (int)sizeof path)
            (void)unlink(path);
    }
    closedir(d);
}

/* Creates "<dest>.tmp.<pid>[.<k>]" exclusively; keeps an existing destination's mode. */
static ponder_status open_tmp(ponder_atomic_file *a, const struct stat *old, ponder_error *err)
{
    size_t cap = strlen(a->dest) + 48;
    if (!(a->tmp = malloc(cap)))
        return ponder_error_set(err, PONDER_ERR_NOMEM, "%s: out of memory", a->dest);
    for (int k = 0; k < 100; k++) {
        if (k == 0)
            snprintf(a->tmp, cap, "%s.tmp.%ld", a->dest, (long)getpid());
        else
            snprintf(a->tmp, cap, "%s.tmp.%ld.%d", a->dest, (long)getpid(), k);
        int fd = open(a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno == EEXIST)
            continue;
        if (fd < 0) {
            int e = errno;
            free(a->tmp);
            a->tmp = NULL;
            return ponder_error_set(err, PONDER_ERR_IO, "%s: cannot create: %s", a->dest, strerror(e));
        }
        if (old)
            (void)fchmod(fd, old->st_mode & 07777); /* best effort, as cp does */
        if (!(a->f = fdopen(fd, "wb"))) {
            close(fd);
            unlink(a->tmp);
            return ponder_error_set(err, PONDER_ERR_NOMEM, "%s: out of memory", a->dest);
        }
        return PONDER_OK;
    }
    free(a->tmp);
    a->tmp = NULL;
    return ponder_error_set(err, PONDER_ERR_IO, "%s: cannot create a temporary file next to it", a->dest);
}

ponder_status ponder_atomic_file_open(const char *path, ponder_atomic_file **out, ponder_error *err)
{
    if (!path || !*path || !out)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "ponder_atomic_file_open: NULL or empty argument");
    *out = NULL;
    ponder_atomic_file *a = calloc(1, sizeof *a);
    if (!a)
        return ponder_error_set(err, PONDER_ERR_NOMEM, "%s: out of memory", path);
    struct stat st, lst;
    bool exists = stat(path, &st) == 0;
    /* A symlink is replaced through: the new file goes next to its target. */
    if (exists && lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode))
        a->dest = realpath(path, NULL);
    else
        a->dest = strdup(path);
    ponder_status s = PONDER_OK;
    if (!a->dest) {
        s = ponder_error_set(err, PONDER_ERR_NOMEM, "%s: out of memory", path);
    } else if (exists && !S_ISREG(st.st_mode)) {
        /* /dev/null, a FIFO, a terminal: nothing to replace, write straight through. */
        if (S_ISDIR(st.st_mode))
            s = ponder_error_set(err, PONDER_ERR_IO, "%s: is a directory", path);
        else if (!(a->f = fopen(path, "wb")))
            s = ponder_error_set(err, PONDER_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    } else {
        remove_stale(a->dest);
        s = open_tmp(a, exists ? &st : NULL, err);
    }
    if (s != PONDER_OK) {
        ponder_atomic_file_abort(a);
        return s;
    }
    *out = a;
    return PONDER_OK;
}

FILE *ponder_atomic_file_stream(ponder_atomic_file *a)
{
    return a ? a->f : NULL;
}

ponder_status ponder_atomic_file_commit(ponder_atomic_file *a, ponder_error *err)
{
    if (!a)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "ponder_atomic_file_commit: NULL file");
    ponder_status s = PONDER_OK;
    bool failed = ferror(a->f) != 0;
    int e = errno;
    if (fflush(a->f) != 0 && !failed) {
        failed = true;
        e = errno;
    }
    if (!failed && a->tmp && fsync(fileno(a->f)) != 0) {
        failed = true;
        e = errno;
    }
    if (fclose(a->f) != 0 && !failed) {
        failed = true;
        e = errno;
    }
    a->f = NULL;
    if (failed) {
        s = ponder_error_set(err, PONDER_ERR_IO, "%s: write failed: %s", a->dest, strerror(e ? e : EIO));
    } else if (a->tmp) {
        if (rename(a->tmp, a->dest) != 0)
            s = ponder_error_set(err, PONDER_ERR_IO, "%s: cannot rename %s into place: %s", a->dest, a->tmp,
                                 strerror(errno));
        else {
            free(a->tmp);
            a->tmp = NULL; /* renamed: nothing left to remove */
            s = sync_dir(a->dest, err);
        }
    }
    ponder_atomic_file_abort(a);
    return s;
}

ponder_status ponder_file_write_atomic(const char *path, const void *buf, size_t len, ponder_error *err)
{
    ponder_atomic_file *a = NULL;
    ponder_status s = ponder_atomic_file_open(path, &a, err);
    if (s != PONDER_OK)
        return s;
    if (len && fwrite(buf, 1, len, a->f) != len) {
        int e = errno;
        ponder_atomic_file_abort(a);
        return ponder_error_set(err, PONDER_ERR_IO, "%s: write failed: %s", path, strerror(e ? e : EIO));
    }
    return ponder_atomic_file_commit(a, err);
}
