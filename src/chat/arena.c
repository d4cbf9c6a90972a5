/*
 * arena.c — the bump allocator every parse and render allocates from, and the UTF-8 and
 * Python-whitespace helpers the lexer and the string functions share.
 *
 * One arena per template (its AST) and one per render (all values), freed at once: values
 * are shared freely without ownership, and an error unwinding by longjmp leaks nothing.
 * The arena has a cap, so a template that builds huge strings fails with a message.
 */
#include "chat/jinja.h"

#include <stdlib.h>
#include <string.h>

struct jarena_chunk {
    jarena_chunk *next;
    size_t size, used;
    _Alignas(max_align_t) unsigned char data[];
};

#define JA_CHUNK_BYTES (64u << 10)

void *ja_alloc(jarena *a, size_t n)
{
    n = (n + 15u) & ~(size_t)15u;
    if (n == 0)
        n = 16;
    if (n > a->cap_bytes || a->used_bytes > a->cap_bytes - n) {
        ponder_error_set(a->err, PONDER_ERR_RANGE, "template needs more than %zu MiB of memory",
                         a->cap_bytes >> 20);
        longjmp(*a->oom_jmp, 1);
    }
    jarena_chunk *c = a->head;
    if (!c || c->size - c->used < n) {
        size_t size = n > JA_CHUNK_BYTES ? n : JA_CHUNK_BYTES;
        c = malloc(sizeof *c + size);
        if (!c) {
            ponder_error_set(a->err, PONDER_ERR_NOMEM, "out of memory in the template engine");
            longjmp(*a->oom_jmp, 1);
        }
        c->size = size;
        c->used = 0;
        /* A big request gets its own chunk behind the current one, so the current
         * chunk's free tail stays usable. */
        if (a->head && size == n) {
            c->next = a->head->next;
            a->head->next = c;
        } else {
            c->next = a->head;
            a->head = c;
        }
    }
    void *p = c->data + c->used;
    c->used += n;
    a->used_bytes += n;
    memset(p, 0, n);
    return p;
}

char *ja_strndup(jarena *a, const char *s, size_t n)
{
    char *p = ja_alloc(a, n + 1);
    if (n)
        memcpy(p, s, n);
    p[n] = 0;
    return p;
}

void ja_free_all(jarena *a)
{
    jarena_chunk *c = a->head;
    while (c) {
        jarena_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->used_bytes = 0;
}

uint32_t jinja_utf8_decode(const char *str, size_t n, size_t *len)
{
    const unsigned char *s = (const unsigned char *)str;
    if (n == 0) {
        *len = 0;
        return 0;
    }
    unsigned c = s[0];
    size_t need;
    uint32_t cp, min;
    if (c < 0x80) {
        *len = 1;
        return c;
    } else if ((c & 0xE0) == 0xC0) {
        need = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        need = 3, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        need = 4, cp = c & 0x07, min = 0x10000;
    } else {
        *len = 1;
        return c;
    }
    if (n < need) {
        *len = 1;
        return c;
    }
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *len = 1;
            return c;
        }
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        *len = 1;
        return c;
    }
    *len = need;
    return cp;
}

/* CPython's str.isspace (Unicode White_Space plus the separators \x1c-\x1f). */
bool jinja_py_isspace(uint32_t cp)
{
    switch (cp) {
    case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D:
    case 0x1C: case 0x1D: case 0x1E: case 0x1F: case 0x20:
    case 0x85: case 0xA0: case 0x1680:
    case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
        return true;
    default:
        return cp >= 0x2000 && cp <= 0x200A;
    }
}

char *jinja_normalize_source(jarena *a, const char *src, size_t len, size_t *out_len)
{
    char *o = ja_alloc(a, len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            o[n++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n')
                i++;
        } else {
            o[n++] = src[i];
        }
    }
    /* keep_trailing_newline=False: jinja2 drops exactly one final newline */
    if (n > 0 && o[n - 1] == '\n')
        n--;
    o[n] = 0;
    *out_len = n;
    return o;
}
