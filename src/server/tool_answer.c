/*
 * tool_answer.c — tools on the answer side: a finished choice's text parsed into calls
 * (src/tools) for a whole response, and a stream's text held back while it may be a call:
 * content goes out as soon as src/tools says it cannot be part of one, and when the choice
 * ends its calls go out as OpenAI streams them — per call one delta with index, id, type
 * and name (arguments ""), then the arguments in fragments — before the finish chunk
 * ("tool_calls"). The openai clients' stream helpers assemble exactly this shape.
 */
#include "server/server_state.h"

#include <stdlib.h>
#include <string.h>

enum { ARG_FRAGMENT_BYTES = 24 };

static void emit(srv_call *c, http_buf *out, const srv_delta *d)
{
    char *chunk = srv_build_chunk(&c->job->req, &c->meta, c->s->tok, d, NULL);
    if (chunk) {
        http_buf_append(out, chunk, strlen(chunk));
        free(chunk);
    } else {
        out->oom = true;
    }
}

bool srv_tools_parse(struct ponder_server *s, const srv_request *r, const char *text, size_t len, ponder_tool_calls *tc,
                     char ***ids, int32_t *n_shown)
{
    *ids = NULL;
    *n_shown = 0;
    ponder_error err;
    if (ponder_tool_calls_parse(r->tool_format, text, len, tc, &err) != PONDER_OK)
        return false;
    if (tc->n_calls == 0)
        return true;
    /* parallel_tool_calls false: at most one call, as OpenAI promises */
    int32_t n = r->parallel_tool_calls ? tc->n_calls : 1;
    *ids = calloc((size_t)n, sizeof **ids);
    for (int32_t i = 0; *ids && i < n; i++) {
        if (!((*ids)[i] = malloc(SRV_TOOL_ID_BYTES)))
            break;
        srv_tool_call_id(&s->id_state, (*ids)[i], SRV_TOOL_ID_BYTES);
        *n_shown = i + 1;
    }
    if (*n_shown == n)
        return true;
    srv_tools_ids_free(*ids, *n_shown);
    *ids = NULL;
    ponder_tool_calls_clear(tc);
    return false;
}

void srv_tools_ids_free(char **ids, int32_t n)
{
    for (int32_t i = 0; ids && i < n; i++)
        free(ids[i]);
    free(ids);
}

bool srv_tools_stream_begin(srv_call *c)
{
    const srv_request *r = &c->job->req;
    if (!r->stream || !r->tools_active || r->kind != SRV_EP_CHAT)
        return true;
    size_t n = (size_t)srv_request_n_choices(r);
    c->tool_n = (int32_t)n; /* the job may be gone when the call ends */
    c->tool_text = calloc(n, sizeof *c->tool_text);
    c->tool_sent = calloc(n, sizeof *c->tool_sent);
    return c->tool_text && c->tool_sent;
}

void srv_tools_stream_end(srv_call *c)
{
    for (int32_t i = 0; c->tool_text && i < c->tool_n; i++)
        free(c->tool_text[i].data);
    free(c->tool_text);
    free(c->tool_sent);
    c->tool_text = NULL;
    c->tool_sent = NULL;
}

void srv_tools_stream_text(srv_call *c, http_buf *out, const srv_event *e, const srv_logprob *lp)
{
    http_buf *b = &c->tool_text[e->choice];
    size_t *sent = &c->tool_sent[e->choice];
    http_buf_append(b, e->text, e->text_len);
    size_t p = ponder_tool_calls_content_prefix(c->job->req.tool_format, b->data, b->len);
    srv_delta d = { .choice = e->choice, .lp = lp };
    if (p > *sent) {
        d.text = b->data + *sent;
        d.text_len = p - *sent;
        *sent = p;
    }
    if (d.text_len || d.lp)
        emit(c, out, &d);
}

/* The arguments' next fragment: at most ARG_FRAGMENT_BYTES, never inside a UTF-8 sequence. */
static size_t fragment(const char *s, size_t left)
{
    if (left <= ARG_FRAGMENT_BYTES)
        return left;
    size_t n = ARG_FRAGMENT_BYTES;
    while (n > 1 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

bool srv_tools_stream_finish(srv_call *c, http_buf *out, int32_t choice)
{
    const srv_request *r = &c->job->req;
    http_buf *b = &c->tool_text[choice];
    size_t sent = c->tool_sent[choice];
    ponder_tool_calls tc;
    char **ids = NULL;
    int32_t n = 0;
    if (!srv_tools_parse(c->s, r, b->data ? b->data : "", b->len, &tc, &ids, &n)) {
        out->oom = true;
        return false;
    }
    /* the content not yet sent: what the parse calls content beyond what went out (the
     * streaming rule never sends past a call's start, so the sent text is its prefix) */
    if (tc.content_len > sent && memcmp(tc.content, b->data, sent) == 0) {
        srv_delta d = { .choice = choice, .text = tc.content + sent, .text_len = tc.content_len - sent };
        emit(c, out, &d);
    }
    for (int32_t k = 0; k < n; k++) {
        srv_delta d = { .choice = choice, .tool_delta = true, .tool_index = k, .tool_id = ids[k],
                        .tool_name = tc.calls[k].name };
        emit(c, out, &d);
        const char *a = tc.calls[k].arguments;
        for (size_t at = 0, len = strlen(a); at < len;) {
            size_t m = fragment(a + at, len - at);
            srv_delta f = { .choice = choice, .tool_delta = true, .tool_index = k, .tool_args = a + at,
                            .tool_args_len = m };
            emit(c, out, &f);
            at += m;
        }
    }
    srv_tools_ids_free(ids, n);
    ponder_tool_calls_clear(&tc);
    return n > 0;
}
