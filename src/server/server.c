/*
 * server.c — ponder_server's life cycle: load the model, tokenizer and chat template,
 * make the pool and the gen engine, start and stop the engine thread. The server has no
 * socket of its own: HTTP is the router's (src/route, `ponder serve`), which asks it
 * in-process (inproc.c).
 */
#include "server/server_state.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

ponder_server_params ponder_server_params_default(void)
{
    ponder_server_params p = { 0 };
    p.n_parallel = 4;
    p.n_ctx = 0;
    p.n_threads = 1;
    p.queue_max = 64;
    p.max_messages = PONDER_SERVER_MAX_MESSAGES_DEFAULT;
    p.type_k = p.type_v = PONDER_TYPE_F16;
    p.flash_attn = PONDER_FLASH_ATTN_AUTO;
    return p;
}

/* Text of a special token for the template's bos_token / eos_token ("" if none). */
static char *special_text(const ponder_tokenizer *tok, ponder_token id)
{
    if (id == PONDER_TOKEN_NULL)
        return strdup("");
    char buf[256];
    int32_t n = ponder_tokenizer_token_to_piece(tok, id, buf, sizeof buf - 1, true);
    if (n < 0)
        n = 0;
    buf[n] = '\0';
    return strdup(buf);
}

static uint32_t fnv1a(uint32_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* --chat-template-file: the file's template, parsed; its text probed for tools. A file
 * that cannot be read or parsed is the caller's error (the server does not start). */
static ponder_status load_template_file(ponder_server *s, ponder_error *err)
{
#ifdef PONDER_SERVER_HAVE_CHAT
    FILE *f = fopen(s->p.chat_template_file, "rb");
    char *src = NULL;
    size_t len = 0, cap = 0;
    if (!f)
        return ponder_error_set(err, PONDER_ERR_IO, "cannot open the chat template file '%s'", s->p.chat_template_file);
    for (;;) {
        if (len + 4096 > cap) {
            char *t = realloc(src, cap = cap * 2 + 8192);
            if (!t) {
                fclose(f);
                free(src);
                return ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory");
            }
            src = t;
        }
        size_t got = fread(src + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    bool bad = ferror(f);
    fclose(f);
    ponder_status st = bad ? ponder_error_set(err, PONDER_ERR_IO, "cannot read '%s'", s->p.chat_template_file)
                           : ponder_chat_template_create(src, len, &s->tmpl, err);
    if (st == PONDER_OK)
        srv_tools_probe(s, src, len);
    else if (!bad)
        ponder_error_prefix(err, "%s", s->p.chat_template_file);
    free(src);
    return st;
#else
    return ponder_error_set(err, PONDER_ERR_UNSUPPORTED, "this build of ponder has no chat template support");
#endif
}

static ponder_status load_template(ponder_server *s, ponder_error *err)
{
    if (s->p.chat_template_file)
        return load_template_file(s, err);
    const ponder_gguf *g = ponder_model_gguf(s->model);
    ponder_error e;
#ifdef PONDER_SERVER_HAVE_CHAT
    ponder_status st = ponder_chat_template_from_gguf(g, &s->tmpl, &e);
    ponder_gguf_str src = { 0 };
    if (st == PONDER_OK && ponder_gguf_get_str(g, "tokenizer.chat_template", &src, &e) == PONDER_OK)
        srv_tools_probe(s, src.data, (size_t)src.len);
#else
    /* built before the chat module: a model's own template cannot be rendered */
    ponder_status st = ponder_gguf_find_kv(g, "tokenizer.chat_template") < 0 ? PONDER_ERR_NOT_FOUND
                                                                             : PONDER_ERR_UNSUPPORTED;
    snprintf(e.msg, sizeof e.msg, "this build of ponder has no chat template support (src/chat)");
#endif
    if (st == PONDER_OK)
        return PONDER_OK;
    s->tmpl = NULL;
    srv_tools_probe(s, NULL, 0); /* ChatML (--chatml) or nothing: tools in the system message */
    if (st == PONDER_ERR_NOT_FOUND) {
        if (s->p.chatml) {
            srv_log(s, PONDER_LOG_INFO, "%s has no tokenizer.chat_template; using ChatML (--chatml)", s->model_id);
        } else {
            snprintf(s->tmpl_error, sizeof s->tmpl_error,
                     "the model '%s' has no chat template (tokenizer.chat_template); use /v1/completions, or "
                     "restart the server with --chatml to use ChatML",
                     s->model_id);
            srv_log(s, PONDER_LOG_WARN, "%s", s->tmpl_error);
        }
        return PONDER_OK;
    }
    /* a template we cannot parse is the model's own: do not swap in another silently */
    snprintf(s->tmpl_error, sizeof s->tmpl_error, "the model's chat template cannot be used: %s", e.msg);
    srv_log(s, PONDER_LOG_WARN, "%s", s->tmpl_error);
    (void)err;
    return PONDER_OK;
}

ponder_status ponder_server_create(const char *model_path, const ponder_server_params *p, ponder_server **out,
                                   ponder_error *err)
{
    *out = NULL;
    if (!model_path)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "no model path");
    ponder_server_params d = ponder_server_params_default();
    if (!p)
        p = &d;
    if (p->n_parallel < 1 || p->queue_max < 0 || p->n_ctx < 0)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "bad server parameters (parallel %d, queue %d, ctx %d)",
                                (int)p->n_parallel, (int)p->queue_max, (int)p->n_ctx);
    ponder_server *s = calloc(1, sizeof *s);
    if (!s)
        return ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory");
    ponder_status st;
    s->p = *p;
    s->p.max_messages = p->max_messages > 0 ? p->max_messages : PONDER_SERVER_MAX_MESSAGES_DEFAULT;
    s->p.version = NULL;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->engine_cv, NULL);
    pthread_cond_init(&s->embed_cv, NULL);
    pthread_cond_init(&s->prepare_cv, NULL);

    if (p->alias && (!p->alias[0] || strlen(p->alias) >= sizeof s->model_id)) {
        ponder_server_free(s);
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "the model alias must be 1 to %d bytes long",
                                (int)sizeof s->model_id - 1);
    }
    s->p.alias = NULL; /* the caller's string: copied into model_id */
    const char *base = strrchr(model_path, '/');
    base = base ? base + 1 : model_path;
    snprintf(s->model_id, sizeof s->model_id, "%s", p->alias ? p->alias : base);
    size_t n = strlen(s->model_id);
    if (!p->alias && n > 5 && strcmp(s->model_id + n - 5, ".gguf") == 0)
        s->model_id[n - 5] = '\0';

    ponder_model_params mp = ponder_model_params_default();
    mp.log = p->log;
    mp.log_user = p->log_user;
    if ((st = ponder_model_load(model_path, &mp, &s->model, err)) != PONDER_OK)
        goto fail;
    if ((st = ponder_tokenizer_create(ponder_model_gguf(s->model), &s->tok, err)) != PONDER_OK)
        goto fail;
    if ((st = load_template(s, err)) != PONDER_OK)
        goto fail;
    /* the longest piece bounds how much text one token covers (srv_job_prepare's cheap
     * check of a prompt's length against the context, made before tokenizing) */
    s->max_piece = 1;
    for (int32_t id = 0, nv = ponder_tokenizer_n_vocab(s->tok); id < nv; id++) {
        char piece[256];
        int32_t len = ponder_tokenizer_token_to_piece(s->tok, id, piece, sizeof piece, true);
        if (len < 0)
            len = -len;
        if (len > s->max_piece)
            s->max_piece = len;
    }
    s->bos_text = special_text(s->tok, ponder_tokenizer_bos(s->tok));
    s->eos_text = special_text(s->tok, ponder_tokenizer_eos(s->tok));
    if (!s->bos_text || !s->eos_text) {
        st = ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (p->n_threads > 1 && (st = ponder_pool_create(p->n_threads, &s->pool, err)) != PONDER_OK)
        goto fail;

    if (p->draft_path) {
        if ((st = ponder_model_load(p->draft_path, &mp, &s->draft, err)) != PONDER_OK ||
            (st = ponder_gen_check_draft(s->model, s->draft, err)) != PONDER_OK)
            goto fail;
    }
    ponder_gen_params gp = ponder_gen_params_default();
    gp.draft = s->draft;
    gp.cache_prompts = !s->draft && !p->no_cache_prompt; /* gen refuses the cache with a draft */
    gp.n_seq_max = p->n_parallel;
    gp.context.n_ctx = p->n_ctx;
    gp.context.pool = s->pool;
    gp.context.type_k = p->type_k;
    gp.context.type_v = p->type_v;
    gp.context.flash_attn = p->flash_attn;
    if ((st = ponder_gen_create(s->model, s->tok, &gp, &s->gen, err)) != PONDER_OK)
        goto fail;
    s->n_ctx = ponder_context_n_ctx(ponder_gen_context(s->gen));

    uint32_t h = fnv1a(2166136261u, p->version ? p->version : "");
    h = fnv1a(h, s->model_id);
    snprintf(s->fingerprint, sizeof s->fingerprint, "fp_ponder_%08x", h);
    s->id_state = ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid() ^ 0x9E3779B97F4A7C15ull;
    *out = s;
    return PONDER_OK;
fail:
    ponder_server_free(s);
    return st;
}

ponder_status ponder_server_start_engine(ponder_server *s, ponder_error *err)
{
    if (s->engine_started)
        return PONDER_OK;
    if (pthread_create(&s->engine, NULL, srv_engine_main, s) != 0)
        return ponder_error_set(err, PONDER_ERR_INTERNAL, "cannot start the engine thread");
    s->engine_started = true;
    return PONDER_OK;
}

void ponder_server_load(ponder_server *s, int64_t *queued, int64_t *active_requests, int64_t *active_sequences)
{
    pthread_mutex_lock(&s->mu);
    *queued = s->load_queued;
    *active_requests = s->load_active;
    *active_sequences = s->load_sequences;
    pthread_mutex_unlock(&s->mu);
}

void ponder_server_cancelled_tokens(ponder_server *s, int64_t *prompt, int64_t *completion)
{
    pthread_mutex_lock(&s->mu);
    *prompt = s->cancelled_prompt;
    *completion = s->cancelled_completion;
    pthread_mutex_unlock(&s->mu);
}

const char *ponder_server_model_id(const ponder_server *s)
{
    return s->model_id;
}

void ponder_server_stop(ponder_server *s)
{
    if (!s || s->stopped)
        return;
    s->stopped = true;
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_cond_broadcast(&s->engine_cv);
    pthread_mutex_unlock(&s->mu);
    if (s->engine_started)
        pthread_join(s->engine, NULL);
    s->engine_started = false;
}

void ponder_server_free(ponder_server *s)
{
    if (!s)
        return;
    ponder_server_stop(s);
    ponder_gen_free(s->gen);
    ponder_pool_free(s->pool);
#ifdef PONDER_SERVER_HAVE_CHAT
    ponder_chat_template_free(s->tmpl);
#endif
    ponder_tokenizer_free(s->tok);
    ponder_model_free(s->model);
    ponder_model_free(s->draft);
    free(s->bos_text);
    free(s->eos_text);
    pthread_cond_destroy(&s->engine_cv);
    pthread_cond_destroy(&s->embed_cv);
    pthread_cond_destroy(&s->prepare_cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
