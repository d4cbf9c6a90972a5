/* util.c — helpers shared by the subcommands: model lookup, files, safe text, sizes. */
#include "cli/cli.h"
#include "ponder/hub.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef PONDER_SHARED_BUILD_DEFAULT
#define PONDER_SHARED_BUILD_DEFAULT ""
#endif
#ifndef PONDER_SOURCE_BUILD_DEFAULT
#define PONDER_SOURCE_BUILD_DEFAULT ""
#endif

/* A regular file (or a symlink to one) we may read: directories named like a model must
 * not shadow the $PONDER_MODELS lookup. */
static bool is_readable_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, R_OK) == 0;
}

static bool copy_if_file(const char *path, char *out, size_t cap)
{
    if (!is_readable_file(path))
        return false;
    int n = snprintf(out, cap, "%s", path);
    return n >= 0 && (size_t)n < cap;
}

/* Directory of the running executable (from /proc/self/exe), or false. */
static bool exe_dir(char *out, size_t cap)
{
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    char *slash = strrchr(buf, '/');
    if (!slash)
        return false;
    *slash = '\0';
    int w = snprintf(out, cap, "%s", buf);
    return w >= 0 && (size_t)w < cap;
}

int cli_find_model(const char *cmd, const char *given, char *out, size_t cap)
{
    char path[PATH_MAX + 64];
    if (given) {
        if (!*given)
            return cli_usage_error(cmd, "empty model path");
        if (copy_if_file(given, out, cap))
            return 0;
        /* A name: $PONDER_MODELS/NAME[.gguf], or a pulled hub or catalogue name. A path
         * with a slash that does not exist is just missing (the stat below says why). */
        ponder_error herr;
        if (ponder_hub_find(given, NULL, out, cap, &herr) == PONDER_OK)
            return 0;
        if (!strchr(given, '/') || ponder_hub_is_name(given))
            return cli_runtime_error("%s", herr.msg);
        struct stat st;
        if (stat(given, &st) == 0)
            return cli_runtime_error("%s: %s", given, S_ISREG(st.st_mode) ? strerror(EACCES) : "not a regular file");
        return cli_runtime_error("%s: %s", given, strerror(errno));
    }

    const char *shared = getenv("PONDER_SHARED");
    if (shared && *shared) {
        snprintf(path, sizeof path, "%s/%s", shared, CLI_DEFAULT_MODEL_REL);
        if (copy_if_file(path, out, cap))
            return 0;
    }
    if (copy_if_file("../shared/" CLI_DEFAULT_MODEL_REL, out, cap))
        return 0;
    char dir[PATH_MAX];
    if (exe_dir(dir, sizeof dir)) {
        snprintf(path, sizeof path, "%s/../../shared/%s", dir, CLI_DEFAULT_MODEL_REL);
        if (copy_if_file(path, out, cap))
            return 0;
        snprintf(path, sizeof path, "%s/../shared/%s", dir, CLI_DEFAULT_MODEL_REL);
        if (copy_if_file(path, out, cap))
            return 0;
    }
    if (PONDER_SHARED_BUILD_DEFAULT[0]) {
        snprintf(path, sizeof path, "%s/%s", PONDER_SHARED_BUILD_DEFAULT, CLI_DEFAULT_MODEL_REL);
        if (copy_if_file(path, out, cap))
            return 0;
    }
    /* No shared folder: the copy the repository ships (a plain clone's quick start). */
    if (copy_if_file(CLI_DEFAULT_MODEL_REL, out, cap))
        return 0;
    if (exe_dir(dir, sizeof dir)) {
        snprintf(path, sizeof path, "%s/../../%s", dir, CLI_DEFAULT_MODEL_REL);
        if (copy_if_file(path, out, cap))
            return 0;
    }
    if (PONDER_SOURCE_BUILD_DEFAULT[0]) {
        snprintf(path, sizeof path, "%s/%s", PONDER_SOURCE_BUILD_DEFAULT, CLI_DEFAULT_MODEL_REL);
        if (copy_if_file(path, out, cap))
            return 0;
    }
    return cli_usage_error(cmd, "no model given (pass -m MODEL; the default %s was found neither in ../shared "
                           "nor in the source tree)", CLI_DEFAULT_MODEL_REL);
}

char *cli_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        cli_runtime_error("%s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            if (cap > SIZE_MAX / 2) {
                free(buf);
                buf = NULL;
                break;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) {
                int e = errno;
                free(buf);
                fclose(f);
                cli_runtime_error("%s: read failed: %s", path, strerror(e ? e : EIO));
                return NULL;
            }
            break;
        }
    }
    fclose(f);
    if (!buf) {
        cli_runtime_error("%s: out of memory reading the file", path);
        return NULL;
    }
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

void cli_fput_quoted(FILE *f, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    fputc('\'', f);
    for (size_t i = 0; i < n;) {
        unsigned char c = u[i];
        size_t len = ponder_utf8_len(u + i, n - i);
        if (len == 0) {
            fprintf(f, "\\x%02x", c);
            i++;
            continue;
        }
        if (len > 1) {
            fwrite(u + i, 1, len, f);
            i += len;
            continue;
        }
        switch (c) {
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\'': fputs("\\'", f); break;
        default:
            if (c < 0x20 || c == 0x7F)
                fprintf(f, "\\x%02x", c);
            else
                fputc(c, f);
        }
        i++;
    }
    fputc('\'', f);
}

json_t *cli_json_string(const char *s, size_t n)
{
    /* Worst case every byte becomes the 3-byte U+FFFD. */
    if (n > (SIZE_MAX - 1) / 3)
        return NULL;
    char *buf = malloc(n * 3 + 1);
    if (!buf)
        return NULL;
    const unsigned char *u = (const unsigned char *)s;
    size_t w = 0;
    for (size_t i = 0; i < n;) {
        size_t len = ponder_utf8_len(u + i, n - i);
        if (len == 0) {
            memcpy(buf + w, "\xEF\xBF\xBD", 3);
            w += 3;
            i++;
        } else {
            memcpy(buf + w, u + i, len);
            w += len;
            i += len;
        }
    }
    json_t *j = json_stringn(buf, w);
    free(buf);
    return j;
}


const char *cli_human_bytes(unsigned long long n, char *buf, size_t cap)
{
    static const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    double v = (double)n;
    int u = 0;
    while (v >= 1024.0 && u < 4) {
        v /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, cap, "%llu B", n);
    else
        snprintf(buf, cap, "%.2f %s", v, units[u]);
    return buf;
}

/* "f16"/"f32"/"q8_0"/"q4_0" (any case) to a KV cache type; false for anything else. */
static bool parse_cache_type(const char *s, ponder_type *out)
{
    static const struct { const char *name; ponder_type type; } types[] = {
        { "f16", PONDER_TYPE_F16 }, { "f32", PONDER_TYPE_F32 }, { "q8_0", PONDER_TYPE_Q8_0 }, { "q4_0", PONDER_TYPE_Q4_0 },
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcasecmp(s, types[i].name) == 0) {
            *out = types[i].type;
            return true;
        }
    return false;
}

int cli_set_flash_attn(const char *cmd, const char *fa, ponder_context_params *cp)
{
    if (!fa)
        return 0;
    if (!strcasecmp(fa, "on") || !strcmp(fa, "1"))
        cp->flash_attn = PONDER_FLASH_ATTN_ON;
    else if (!strcasecmp(fa, "off") || !strcmp(fa, "0"))
        cp->flash_attn = PONDER_FLASH_ATTN_OFF;
    else if (!strcasecmp(fa, "auto"))
        cp->flash_attn = PONDER_FLASH_ATTN_AUTO;
    else
        return cli_usage_error(cmd, "unsupported value '%s' for -fa (allowed: on, off, auto, 1, 0)", fa);
    return 0;
}

int cli_set_cache_types(const char *cmd, const char *ctk, const char *ctv, ponder_context_params *cp)
{
    if (ctk && !parse_cache_type(ctk, &cp->type_k))
        return cli_usage_error(cmd, "unsupported cache type '%s' for -ctk (allowed: f16, f32, q8_0, q4_0)", ctk);
    if (ctv && !parse_cache_type(ctv, &cp->type_v))
        return cli_usage_error(cmd, "unsupported cache type '%s' for -ctv (allowed: f16, f32, q8_0, q4_0)", ctv);
    return 0;
}
