/* testutil.c — see testutil.h. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
