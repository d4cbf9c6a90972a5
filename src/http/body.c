/*
 * body.c — a request body read in the pieces libmicrohttpd hands over (the front end),
 * shared by `ponder serve` and the router.
 */
#include "http/http.h"

#include <stdlib.h>
#include <string.h>

bool http_body_append(http_body *b, const char *data, size_t n, size_t max_bytes)
{
    if (b->too_large)
        return true;
    if (b->len + n > max_bytes) {
        /* past the limit the rest is read and dropped, so the client gets its 413 instead
         * of a reset connection */
        b->too_large = true;
        free(b->data);
        b->data = NULL;
        b->len = b->cap = 0;
        return true;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *grown = realloc(b->data, cap);
        if (!grown)
            return false;
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return true;
}

void http_body_free(http_body *b)
{
    free(b->data);
    *b = (http_body){0};
}
