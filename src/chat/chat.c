/*
 * chat.c — the public chat-template API (include/ponder/chat.h): parse once, render per
 * request from a JSON object of variables. The lexer, parser and evaluator live in
 * lex.c, parse.c, eval.c, value.c and builtins.c.
 */
#include "ponder/chat.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "chat/jinja.h"

struct ponder_chat_template {
    jarena a; /* owns the AST and every string in it */
    jnode *root;
};

/* llama.cpp's ChatML (llm_chat_apply_template "chatml"), the documented fallback. */
static const char chatml_source[] =
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

const char *ponder_chat_template_chatml_source(void)
{
    return chatml_source;
}

/* The setjmp lives here, with nothing modified after it, so no local is clobbered. */
static ponder_status parse_into(ponder_chat_template *t, jparse *p, const char *source, size_t len)
{
    jmp_buf jmp;
    t->a.oom_jmp = &jmp;
    p->jmp = &jmp;
    if (setjmp(jmp))
        return p->err->code != PONDER_OK ? p->err->code : PONDER_ERR_INTERNAL;
    size_t n;
    char *src = jinja_normalize_source(&t->a, source ? source : "", len, &n);
    jinja_lex(p, src, n);
    t->root = jinja_parse(p);
    return PONDER_OK;
}

ponder_status ponder_chat_template_create(const char *source, size_t len, ponder_chat_template **out,
                                          ponder_error *err)
{
    if (!out || (!source && len))
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "chat template: NULL argument");
    *out = NULL;
    ponder_error local = { 0 };
    ponder_error *e = err ? err : &local;
    ponder_chat_template *t = calloc(1, sizeof *t);
    jparse *p = calloc(1, sizeof *p);
    if (!t || !p) {
        free(t);
        free(p);
        return ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory");
    }
    t->a.cap_bytes = JINJA_MAX_ARENA_BYTES;
    t->a.err = e;
    p->a = &t->a;
    p->err = e;
    ponder_status st = parse_into(t, p, source, len);
    free(p);
    /* the AST is complete; nothing allocates from this arena again */
    t->a.oom_jmp = NULL;
    t->a.err = NULL;
    if (st != PONDER_OK) {
        ponder_chat_template_free(t);
        return st;
    }
    *out = t;
    return PONDER_OK;
}

void ponder_chat_template_free(ponder_chat_template *t)
{
    if (!t)
        return;
    ja_free_all(&t->a);
    free(t);
}

ponder_status ponder_chat_template_from_gguf(const ponder_gguf *g, ponder_chat_template **out, ponder_error *err)
{
    if (!g || !out)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "chat template: NULL argument");
    *out = NULL;
    ponder_gguf_str s;
    ponder_status st = ponder_gguf_get_str(g, "tokenizer.chat_template", &s, err);
    if (st == PONDER_ERR_NOT_FOUND)
        return ponder_error_set(err, PONDER_ERR_NOT_FOUND, "the model has no tokenizer.chat_template");
    if (st != PONDER_OK)
        return st;
    st = ponder_chat_template_create(s.data, (size_t)s.len, out, err);
    if (st != PONDER_OK)
        ponder_error_prefix(err, "tokenizer.chat_template");
    return st;
}

ponder_status ponder_chat_render_json(const ponder_chat_template *t, const char *vars_json, size_t vars_len,
                                      char **out, size_t *out_len, ponder_error *err)
{
    if (!t || !out || !out_len || (!vars_json && vars_len))
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "chat template render: NULL argument");
    *out = NULL;
    *out_len = 0;
    json_error_t je;
    json_t *vars = json_loadb(vars_json ? vars_json : "", vars_len, JSON_ALLOW_NUL, &je);
    if (!vars)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "template variables: bad JSON at line %d, column %d: %s",
                                je.line, je.column, je.text);
    if (!json_is_object(vars)) {
        json_decref(vars);
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "template variables must be a JSON object");
    }
    ponder_status st = jinja_render(t->root, vars, out, out_len, err);
    json_decref(vars);
    return st;
}
