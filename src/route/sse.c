/*
 * sse.c — incremental server-sent-events parsing (the WHATWG event-stream rules that
 * OpenAI-compatible servers use): lines end in "\n", "\r\n" or "\r"; "data:" lines
 * accumulate, one optional space after the colon dropped; a blank line dispatches.
 */
#include "route/route_internal.h"

#include <stdlib.h>
#include <string.h>

#define SSE_DEFAULT_MAX (16u << 20)

void rt_sse_init(rt_sse *p)
{
    memset(p, 0, sizeof *p);
}

void rt_sse_free(rt_sse *p)
{
    free(p->line);
    free(p->data);
    memset(p, 0, sizeof *p);
}

static bool grow(rt_sse *p, char **buf, size_t *cap, size_t need)
{
    size_t max = p->max_bytes ? p->max_bytes : SSE_DEFAULT_MAX;
    if (need > max + 1)
        return !(p->oom = true);
    if (need <= *cap)
        return true;
    size_t nc = *cap ? *cap : 256;
    while (nc < need)
        nc *= 2;
    char *b = realloc(*buf, nc);
    if (!b)
        return !(p->oom = true);
    *buf = b;
    *cap = nc;
    return true;
}

/* One complete line (without its end). */
static bool on_line(rt_sse *p, rt_sse_fn fn, void *user)
{
    const char *l = p->line ? p->line : "";
    size_t n = p->line_len;
    if (n == 0) {
        if (!p->has_data)
            return true;
        p->has_data = false;
        size_t len = p->data_len;
        p->data_len = 0;
        if (!grow(p, &p->data, &p->data_cap, len + 1))
            return false;
        p->data[len] = '\0';
        return fn(p->data, len, user);
    }
    if (l[0] == ':')
        return true; /* a comment (keep-alive) */
    const char *colon = memchr(l, ':', n);
    size_t name_len = colon ? (size_t)(colon - l) : n;
    if (name_len != 4 || memcmp(l, "data", 4) != 0)
        return true;
    const char *v = colon ? colon + 1 : l + n;
    if (v < l + n && *v == ' ')
        v++;
    size_t vlen = (size_t)(l + n - v);
    /* several data lines make one payload joined by "\n" */
    size_t need = p->data_len + (p->has_data ? 1 : 0) + vlen + 1;
    if (!grow(p, &p->data, &p->data_cap, need))
        return false;
    if (p->has_data)
        p->data[p->data_len++] = '\n';
    memcpy(p->data + p->data_len, v, vlen);
    p->data_len += vlen;
    p->has_data = true;
    return true;
}

bool rt_sse_feed(rt_sse *p, const char *bytes, size_t n, rt_sse_fn fn, void *user)
{
    if (p->oom)
        return false;
    size_t i = 0;
    while (i < n) {
        if (p->after_cr) {
            p->after_cr = false;
            if (bytes[i] == '\n') {
                i++;
                continue;
            }
        }
        /* the run up to the next line end is copied at once */
        size_t j = i;
        while (j < n && bytes[j] != '\n' && bytes[j] != '\r')
            j++;
        if (j > i) {
            if (!grow(p, &p->line, &p->line_cap, p->line_len + (j - i) + 1))
                return false;
            memcpy(p->line + p->line_len, bytes + i, j - i);
            p->line_len += j - i;
        }
        if (j == n)
            break;
        p->after_cr = bytes[j] == '\r';
        i = j + 1;
        bool ok = on_line(p, fn, user);
        p->line_len = 0;
        if (!ok)
            return false;
    }
    return true;
}
