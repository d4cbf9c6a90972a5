/*
 * engine.c — the one set-up every generating subcommand shares: the model (and a draft)
 * found and loaded from the common flags, its tokenizer, a thread pool, the context size
 * rule, and a context or a gen engine over them; one place for the messages a user sees
 * when any of it fails, and one teardown.
 */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

#include "ponder/gen.h"
#include "ponder/pool.h"
#include "ponder/think.h"
#include "ponder/tokenizer.h"

/* --verifier: its model, its own tokenizer and a context at its training length */
static int open_verifier(cli_engine *e)
{
    ponder_error err = { 0 };
    if (ponder_model_load(e->verifier_path, NULL, &e->verifier_model, &err) != PONDER_OK)
        return cli_runtime_error("--verifier: %s", err.msg);
    if (ponder_tokenizer_create(ponder_model_gguf(e->verifier_model), &e->verifier_tok, &err) != PONDER_OK)
        return cli_runtime_error("--verifier %s: %s", e->verifier_path, err.msg);
    ponder_context_params vcp = ponder_context_params_default();
    vcp.pool = e->pool;
    if (ponder_verifier_create(e->verifier_model, e->verifier_tok, &vcp, &e->verifier, &err) != PONDER_OK)
        return cli_runtime_error("--verifier %s: %s", e->verifier_path, err.msg);
    return CLI_EXIT_OK;
}

int cli_engine_open(const char *cmd, const cli_model_opts *o, int32_t default_n_ctx, cli_engine *e)
{
    memset(e, 0, sizeof *e);
    e->cmd = cmd;
    e->cp = ponder_context_params_default();
    int rc = cli_set_cache_types(cmd, o->ctk, o->ctv, &e->cp);
    if (rc == 0)
        rc = cli_set_flash_attn(cmd, o->fa, &e->cp);
    if (rc != 0)
        return rc;
    e->cp.float_activations = o->float_act;
    if ((rc = cli_find_model(cmd, o->model, e->path, sizeof e->path)) != 0)
        return rc;
    if (o->draft && (rc = cli_find_model(cmd, o->draft, e->draft_path, sizeof e->draft_path)) != 0)
        return rc;
    if (o->verifier && (rc = cli_find_model(cmd, o->verifier, e->verifier_path, sizeof e->verifier_path)) != 0)
        return rc;

    ponder_error err = { 0 };
    if (ponder_model_load(e->path, NULL, &e->m, &err) != PONDER_OK)
        return cli_runtime_error("%s", err.msg);
    if (o->draft) {
        if (ponder_model_load(e->draft_path, NULL, &e->draft, &err) != PONDER_OK)
            return cli_runtime_error("--draft: %s", err.msg);
        if (ponder_gen_check_draft(e->m, e->draft, &err) != PONDER_OK)
            return cli_runtime_error("--draft %s: %s", e->draft_path, err.msg);
    }
    if (ponder_tokenizer_create(ponder_model_gguf(e->m), &e->tok, &err) != PONDER_OK)
        return cli_runtime_error("%s: %s", e->path, err.msg);
    /* llama.cpp's -c: 0 is the training context; not given, the default clipped to it */
    const int32_t train = ponder_model_hparams(e->m)->n_ctx_train;
    if (!o->n_ctx_given)
        e->cp.n_ctx = train > 0 && train < default_n_ctx ? train : default_n_ctx;
    else
        e->cp.n_ctx = o->n_ctx == 0 ? train : o->n_ctx;
    if (ponder_pool_create(o->n_threads, &e->pool, &err) != PONDER_OK)
        return cli_runtime_error("%s", err.msg);
    e->cp.pool = e->pool;
    return o->verifier ? open_verifier(e) : CLI_EXIT_OK;
}

int cli_engine_context(cli_engine *e, ponder_context **out)
{
    ponder_error err = { 0 };
    if (ponder_context_create(e->m, &e->cp, out, &err) != PONDER_OK)
        return cli_runtime_error("%s", err.msg);
    return CLI_EXIT_OK;
}

int cli_engine_gen(cli_engine *e, int32_t n_seq_max, int32_t n_kv_cells, int32_t draft_k, ponder_gen **out)
{
    ponder_gen_params gp = ponder_gen_params_default();
    gp.n_seq_max = n_seq_max;
    gp.context = e->cp;
    gp.context.n_kv_cells = n_kv_cells;
    gp.draft = e->draft;
    gp.draft_k = draft_k;
    ponder_error err = { 0 };
    if (ponder_gen_create(e->m, e->tok, &gp, out, &err) != PONDER_OK)
        return cli_runtime_error("%s", err.msg);
    return CLI_EXIT_OK;
}

int cli_engine_encode(const cli_engine *e, const char *text, size_t len, bool special, ponder_token **ids,
                      size_t *n)
{
    ponder_error err = { 0 };
    if (ponder_tokenizer_encode(e->tok, text, len, !special, special, ids, n, &err) != PONDER_OK)
        return cli_runtime_error("prompt: %s", err.msg);
    if (*n == 0)
        return cli_runtime_error("the prompt is empty (this model adds no BOS token); give some text with -p or -f");
    if (*n > (size_t)e->cp.n_ctx)
        return cli_runtime_error("the prompt is %zu tokens but the context holds only %d (raise -c, at most the "
                                 "model's %d)",
                                 *n, (int)e->cp.n_ctx, (int)ponder_model_hparams(e->m)->n_ctx_train);
    return CLI_EXIT_OK;
}

void cli_engine_close(cli_engine *e)
{
    ponder_verifier_free(e->verifier);
    ponder_tokenizer_free(e->verifier_tok);
    ponder_model_free(e->verifier_model);
    ponder_pool_free(e->pool);
    ponder_tokenizer_free(e->tok);
    ponder_model_free(e->draft);
    ponder_model_free(e->m);
    memset(e, 0, sizeof *e);
}
