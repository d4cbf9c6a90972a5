/*
 * cmd_run.c — `ponder run`: tokenize a prompt, decode it in one batch, then sample and
 * stream the continuation.
 *
 * Follows llama.cpp's llama-cli/llama-simple flow, with two deliberate differences:
 * only the generated text goes to stdout (not the prompt), and -n defaults to 128
 * instead of llama.cpp's -1 (unbounded), so a bare `ponder run` ends. Prompt tokens are
 * fed to the sampler's repetition window, as llama-cli does. Generation stops after -n
 * tokens, at an end-of-generation token (which is not printed), or when the context is
 * full — the last token sampled needs no KV slot, so up to n_ctx - n_prompt + 1 tokens.
 *
 * With --strategy the prompt goes to a think strategy instead (think.h): the chains are
 * decoded by the gen engine (sc/bon as one request sharing the prompt's KV), the answers
 * extracted and voted, and --json prints the strategy result (cli_think_json, cmd_eval.c).
 */
#include "cli/cli.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "ponder/gen.h"
#include "ponder/model.h"
#include "ponder/pool.h"
#include "ponder/sample.h"
#include "ponder/think.h"
#include "ponder/tokenizer.h"

#define RUN_DEFAULT_PROMPT "Once upon a time"
#define RUN_DEFAULT_N_PREDICT 128 /* llama.cpp: -1 (until EOG); a bound is friendlier */
#define RUN_DEFAULT_N_CTX 4096    /* llama.cpp's -c default, clipped to n_ctx_train */
#define RUN_SAMPLED_TEMP 0.7f     /* --strategy sc/asc/bon without --temp (Wang et al. 2022) */

static void usage(void)
{
    ponder_sampler_params d = ponder_sampler_params_default();
    printf("usage: ponder run [-m MODEL] [-p TEXT | -f FILE] [options]\n"
           "\n"
           "Generates a continuation of the prompt. The prompt is tokenized with the\n"
           "model's BOS/EOS rules (special-token texts are not parsed) and decoded in one\n"
           "batch; then tokens are sampled until -n tokens, an end-of-generation token (not\n"
           "printed) or a full context. Only the generated text goes to stdout, streamed;\n"
           "a timing line (prompt and generation tokens and tokens/s) goes to stderr.\n"
           "\n"
           "options:\n"
           "  -m, --model MODEL        GGUF file, or a name in $PONDER_MODELS (default: the\n"
           "                           stories260K model from ../shared, if found)\n"
           "  -p, --prompt TEXT        prompt (default: \"%s\")\n"
           "  -f, --file FILE          read the prompt from FILE (one trailing newline is\n"
           "                           dropped, as llama.cpp does)\n"
           "  -n, --n-predict N        tokens to generate (default: %d; -1: until an\n"
           "                           end-of-generation token or a full context)\n"
           "  -c, --ctx-size N         context size in tokens (default: %d, clipped to the\n"
           "                           model's training context; 0: the training context)\n"
           "  -t, --threads N          threads (default: the number of CPUs)\n"
           "  -ctk, --cache-type-k T   KV cache type for K: f16 (default) or f32\n"
           "  -ctv, --cache-type-v T   KV cache type for V: f16 (default) or f32\n"
           "      --float-activations  exact-float mode: dequantize weights, f32 activations\n"
           "      --special            the prompt is a chat template's rendering (ponder\n"
           "                           template): special-token texts such as <|im_start|>\n"
           "                           are parsed and no BOS is added, as ponder chat and the\n"
           "                           server tokenize it\n"
           "\n"
           "sampling (applied in this order, as llama.cpp):\n"
           "      --repeat-penalty R   penalise tokens seen in the last N (default: %.1f, off)\n"
           "      --repeat-last-n N    window for the penalty (default: %d; 0: off; -1: context)\n"
           "      --top-k K            keep the K most likely tokens (default: %d; <= 0: off)\n"
           "      --top-p P            keep the smallest set with probability >= P (default:\n"
           "                           %.2f; 1: off)\n"
           "      --min-p P            drop tokens below P x the top probability (default:\n"
           "                           %.2f; 0: off)\n"
           "      --temp T             temperature (default: %.1f; <= 0: greedy, i.e. argmax\n"
           "                           after the repetition penalty)\n"
           "  -s, --seed S             random seed (default: -1, random; same seed and\n"
           "                           options give the same text)\n"
           "\n"
           "output:\n"
           "      --json               print one JSON object instead of the text:\n"
           "                           {\"prompt_tokens\": [...], \"tokens\": [...], \"text\": ...,\n"
           "                            \"stop\": \"length\"|\"eog\"|\"context\", \"seed\": S,\n"
           "                            \"timings\": {\"prompt_n\", \"prompt_ms\",\n"
           "                            \"prompt_per_second\", \"predicted_n\", \"predicted_ms\",\n"
           "                            \"predicted_per_second\"}}\n"
           "\n"
           "test-time strategies:\n"
           "      --strategy S         direct, cot, sc:N, asc:N or bon:N: sample chains for the\n"
           "                           prompt (cot and the sampled ones append \" Let's think\n"
           "                           step by step.\"), extract each answer, vote (sc, asc: a\n"
           "                           tie goes to the answer seen first) or keep the chain\n"
           "                           with the best mean logprob (bon). sc and bon decode\n"
           "                           their N chains as one batch over the prompt, evaluated\n"
           "                           once; chain i uses seed + i. -n is tokens per chain.\n"
           "                           Without --temp: greedy for direct/cot, %.1f otherwise.\n"
           "                           Prints the chosen chain; --json prints {\"answer\",\n"
           "                           \"strategy\", \"samples\": [{\"text\", \"answer\", \"tokens\",\n"
           "                           \"mean_logprob\"}], \"votes\": {answer: count},\n"
           "                           \"agreement\" (top votes / chains with an answer),\n"
           "                           \"usage\": {\"prompt_tokens\", \"prompt_tokens_evaluated\",\n"
           "                           \"completion_tokens\", \"flops\"}, \"timings\": {\"wall_ms\"}}\n"
           "      --answer KIND        what to extract: number (default), choice (a letter) or\n"
           "                           text (the first line)\n"
           "\n"
           "speculative decoding:\n"
           "      --draft MODEL        a smaller model with the same vocabulary proposes tokens\n"
           "                           that MODEL verifies in one batched decode per step;\n"
           "                           greedy output is MODEL's own, sampling keeps MODEL's\n"
           "                           distribution (other draws than without --draft). The\n"
           "                           repetition window holds the generated tokens only.\n"
           "                           With --strategy every chain decodes speculatively.\n"
           "                           stderr gets a line with the proposed and accepted\n"
           "                           tokens; --json adds \"speculative\": {\"draft\",\n"
           "                           \"draft_tokens\", \"draft_accepted\", \"verify_steps\",\n"
           "                           \"acceptance_rate\", \"accepted_per_verify\"}\n"
           "      --draft-k K          proposals per step to start with (default 4); then +1\n"
           "                           after a step accepting all, halved after one accepting\n"
           "                           fewer than half, within 1..16; paused 16 steps\n"
           "                           while the acceptance rate is below the draft's size\n"
           "                           over MODEL's (it cannot pay), then tried again\n"
           "  -h, --help               this help\n"
           "\n"
           "Exit status: 0 success, 1 runtime error (model, file, prompt longer than the\n"
           "context), 2 usage error.\n",
           RUN_DEFAULT_PROMPT, RUN_DEFAULT_N_PREDICT, RUN_DEFAULT_N_CTX, (double)d.repeat_penalty,
           (int)d.repeat_last_n, (int)d.top_k, (double)d.top_p, (double)d.min_p, (double)d.temp,
           (double)RUN_SAMPLED_TEMP);
}

/* Growable byte buffer for --json's text. */
typedef struct text_buf {
    char *data;
    size_t len, cap;
} text_buf;

static bool text_append(text_buf *b, const char *s, size_t n)
{
    if (n == 0)
        return true;
    if (n > SIZE_MAX - b->len - 1)
        return false;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap = cap > SIZE_MAX / 2 ? b->len + n + 1 : cap * 2;
        char *d = realloc(b->data, cap);
        if (!d)
            return false;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return true;
}

static json_t *ids_json(const int32_t *ids, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, json_integer(ids[i]));
    return a;
}

static double per_second(size_t n, double ms)
{
    return ms > 0.0 ? (double)n * 1000.0 / ms : 0.0;
}

typedef struct run_opts {
    const char *model, *prompt, *file, *ctk, *ctv, *strategy, *answer, *draft;
    int32_t n_predict, n_ctx, n_threads, draft_k;
    bool n_ctx_given, json, float_act, temp_given, special;
    ponder_sampler_params sp;
} run_opts;

/* `ponder run --strategy`: the prompt through a think strategy on a gen engine. */
static int run_strategy(const run_opts *o, const ponder_strategy *strat, ponder_answer_kind akind,
                        ponder_context_params cp, const char *model_path, const char *prompt)
{
    ponder_error err = { 0 };
    ponder_model *m = NULL, *dm = NULL;
    ponder_tokenizer *tok = NULL;
    ponder_pool *pool = NULL;
    ponder_gen *g = NULL;
    ponder_think_result *res = NULL;
    int rc = CLI_EXIT_RUNTIME;

    if (ponder_model_load(model_path, NULL, &m, &err) != PONDER_OK) {
        cli_runtime_error("%s", err.msg);
        goto done;
    }
    if (o->draft) { /* the chains decode speculatively: gen drives the draft for every chain */
        char draft_path[PATH_MAX];
        if ((rc = cli_find_model("run", o->draft, draft_path, sizeof draft_path)) != 0)
            goto done;
        rc = CLI_EXIT_RUNTIME;
        if (ponder_model_load(draft_path, NULL, &dm, &err) != PONDER_OK) {
            cli_runtime_error("--draft: %s", err.msg);
            goto done;
        }
    }
    const ponder_hparams *h = ponder_model_hparams(m);
    if (ponder_tokenizer_create(ponder_model_gguf(m), &tok, &err) != PONDER_OK) {
        cli_runtime_error("%s: %s", model_path, err.msg);
        goto done;
    }
    if (!o->n_ctx_given)
        cp.n_ctx = h->n_ctx_train > 0 && h->n_ctx_train < RUN_DEFAULT_N_CTX ? h->n_ctx_train : RUN_DEFAULT_N_CTX;
    else
        cp.n_ctx = o->n_ctx == 0 ? h->n_ctx_train : o->n_ctx;
    if (ponder_pool_create(o->n_threads, &pool, &err) != PONDER_OK) {
        cli_runtime_error("%s", err.msg);
        goto done;
    }
    ponder_think_params p = ponder_think_params_default();
    p.strategy = *strat;
    p.answer_kind = akind;
    p.max_tokens = o->n_predict < 0 ? 0 : o->n_predict;
    p.sampling = o->sp;
    if (!o->temp_given)
        p.sampling.temp = strat->kind == PONDER_THINK_DIRECT || strat->kind == PONDER_THINK_COT ? 0.0f : RUN_SAMPLED_TEMP;
    if (p.sampling.repeat_last_n < 0)
        p.sampling.repeat_last_n = cp.n_ctx;
    ponder_gen_params gp = ponder_gen_params_default();
    gp.n_seq_max = strat->kind == PONDER_THINK_SC || strat->kind == PONDER_THINK_BON ? strat->n_samples
                   : strat->kind == PONDER_THINK_ASC ? (strat->n_samples < p.asc_round ? strat->n_samples : p.asc_round)
                                                     : 1;
    cp.pool = pool;
    /* the prompt's cells are shared by the chains: room for one prompt and every chain's own
     * tokens (and a draft's proposals), instead of n_ctx per chain */
    const int64_t per_chain = (int64_t)p.max_tokens + 1 + (dm ? PONDER_GEN_DRAFT_K_MAX : 0);
    if (p.max_tokens > 0 && (int64_t)cp.n_ctx + (int64_t)gp.n_seq_max * per_chain < (int64_t)cp.n_ctx * gp.n_seq_max)
        cp.n_kv_cells = (int32_t)(cp.n_ctx + gp.n_seq_max * per_chain);
    gp.context = cp;
    gp.draft = dm;
    gp.draft_k = o->draft_k;
    if (ponder_gen_create(m, tok, &gp, &g, &err) != PONDER_OK) {
        cli_runtime_error("%s", err.msg);
        goto done;
    }
    if (ponder_think_run(g, tok, &p, prompt, &res, &err) != PONDER_OK) {
        cli_runtime_error("%s", err.msg);
        goto done;
    }
    bool write_failed = false;
    if (o->json) {
        json_t *j = cli_think_json(res);
        char *s = j ? json_dumps(j, JSON_PRESERVE_ORDER) : NULL;
        json_decref(j);
        if (!s) {
            cli_runtime_error("out of memory");
            goto done;
        }
        write_failed = puts(s) == EOF;
        free(s);
    } else if (res->best >= 0) {
        const ponder_think_sample *s = &res->samples[res->best];
        write_failed = fwrite(s->text, 1, s->text_len, stdout) != s->text_len ||
                       (isatty(STDOUT_FILENO) && (s->text_len == 0 || s->text[s->text_len - 1] != '\n') &&
                        putchar('\n') == EOF);
    }
    if (fflush(stdout) != 0 || write_failed) {
        cli_runtime_error("writing the output failed: %s", strerror(errno ? errno : EIO));
        goto done;
    }
    char sname[32];
    int32_t top = res->n_votes > 0 ? res->votes[0].count : 0;
    fprintf(stderr, "strategy %s: answer %s (%d of %d chains, agreement %.2f), prompt %llu tokens (evaluated %llu), "
                    "completion %llu tokens, %.3g FLOPs, %.1f ms\n",
            ponder_strategy_format(&res->strategy, sname, sizeof sname), res->answer ? res->answer : "(none)",
            (int)(res->strategy.kind == PONDER_THINK_BON ? 1 : top), (int)res->n_samples, res->agreement,
            (unsigned long long)res->usage.prompt_tokens, (unsigned long long)res->usage.prompt_tokens_evaluated,
            (unsigned long long)res->usage.completion_tokens, (double)res->usage.flops, res->usage.wall_ms);
    rc = CLI_EXIT_OK;
done:
    ponder_think_result_free(res);
    ponder_gen_free(g);
    ponder_pool_free(pool);
    ponder_tokenizer_free(tok);
    ponder_model_free(dm);
    ponder_model_free(m);
    return rc;
}

/* What `ponder run --draft` streams and counts. */
typedef struct spec_out {
    bool json, write_failed;
    text_buf text;
    char last_byte;
    double t_first;     /* when the first token came (the prompt is done) */
} spec_out;

static void spec_on_event(const ponder_gen_event *ev, void *user)
{
    spec_out *o = user;
    if (o->t_first == 0.0)
        o->t_first = cli_now_ms();
    if (ev->text_len == 0)
        return;
    if (o->json) {
        if (!text_append(&o->text, ev->text, ev->text_len))
            o->write_failed = true;
    } else if (!o->write_failed) {
        o->write_failed = fwrite(ev->text, 1, ev->text_len, stdout) != ev->text_len || fflush(stdout) != 0;
        o->last_byte = ev->text[ev->text_len - 1];
    }
}

/* `ponder run --draft`: the same generation through the gen engine with a draft model
 * proposing tokens (gen.h); the repetition window holds the generated tokens only, as
 * for the server's requests. */
static int run_speculative(const run_opts *o, ponder_context_params cp, const char *model_path,
                           const char *draft_path, const char *prompt, size_t prompt_len)
{
    ponder_error err = { 0 };
    ponder_model *m = NULL, *dm = NULL;
    ponder_tokenizer *tok = NULL;
    ponder_pool *pool = NULL;
    ponder_gen *g = NULL;
    ponder_token *prompt_ids = NULL;
    size_t n_prompt = 0;
    int32_t id = 0;
    spec_out out = { .json = o->json, .last_byte = '\n' };
    int rc = CLI_EXIT_RUNTIME;

    if (ponder_model_load(model_path, NULL, &m, &err) != PONDER_OK) {
        cli_runtime_error("%s", err.msg);
        goto done;
    }
    if (ponder_model_load(draft_path, NULL, &dm, &err) != PONDER_OK) {
        cli_runtime_error("--draft: %s", err.msg);
        goto done;
    }
    if (ponder_gen_check_draft(m, dm, &err) != PONDER_OK) {
        cli_runtime_error("--draft %s: %s", draft_path, err.msg);
        goto done;
    }
    const ponder_hparams *h = ponder_model_hparams(m);
    if (ponder_tokenizer_create(ponder_model_gguf(m), &tok, &err) != PONDER_OK) {
        cli_runtime_error("%s: %s", model_path, err.msg);
        goto done;
    }
    if (ponder_tokenizer_encode(tok, prompt, prompt_len, !o->special, o->special, &prompt_ids, &n_prompt, &err) !=
        PONDER_OK) {
        cli_runtime_error("prompt: %s", err.msg);
        goto done;
    }
    if (n_prompt == 0) {
        cli_runtime_error("the prompt is empty (this model adds no BOS token); give some text with -p or -f");
        goto done;
    }
    if (!o->n_ctx_given)
        cp.n_ctx = h->n_ctx_train > 0 && h->n_ctx_train < RUN_DEFAULT_N_CTX ? h->n_ctx_train : RUN_DEFAULT_N_CTX;
    else
        cp.n_ctx = o->n_ctx == 0 ? h->n_ctx_train : o->n_ctx;
    if (n_prompt > (size_t)cp.n_ctx) {
        cli_runtime_error("the prompt is %zu tokens but the context holds only %d (raise -c, at most the "
                          "model's %d)",
                          n_prompt, (int)cp.n_ctx, (int)h->n_ctx_train);
        goto done;
    }
    if (ponder_pool_create(o->n_threads, &pool, &err) != PONDER_OK) {
        cli_runtime_error("%s", err.msg);
        goto done;
    }
    cp.pool = pool;
    ponder_gen_params gp = ponder_gen_params_default();
    gp.context = cp;
    gp.draft = dm;
    gp.draft_k = o->draft_k;
    if (ponder_gen_create(m, tok, &gp, &g, &err) != PONDER_OK) {
        cli_runtime_error("%s", err.msg);
        goto done;
    }
    ponder_gen_request req = { 0 };
    req.prompt = prompt_ids;
    req.n_prompt = (int32_t)n_prompt;
    req.n_choices = 1;
    req.max_tokens = o->n_predict < 0 ? 0 : o->n_predict;
    req.sampling = o->sp;
    if (req.sampling.repeat_last_n < 0)
        req.sampling.repeat_last_n = cp.n_ctx;
    req.on_event = spec_on_event;
    req.user = &out;
    const double t0 = cli_now_ms();
    if (o->n_predict != 0 && ponder_gen_run(g, &req, &id, &err) != PONDER_OK) {
        cli_runtime_error("%s", err.msg);
        goto done;
    }
    const double t_end = cli_now_ms();
    ponder_gen_choice_result res = { 0 };
    ponder_gen_usage use = { 0 };
    if (id > 0 && (ponder_gen_result(g, id, 0, &res, &err) != PONDER_OK ||
                   ponder_gen_usage_of(g, id, &use, &err) != PONDER_OK)) {
        cli_runtime_error("%s", err.msg);
        goto done;
    }
    /* the tokens printed: a final end-of-generation token is not part of the text */
    int32_t n_gen = res.n_tokens;
    const char *stop = "length";
    if (res.finish == PONDER_FINISH_STOP) {
        stop = "eog";
        n_gen--;
    } else if (res.finish == PONDER_FINISH_LENGTH && (o->n_predict < 0 || n_gen < o->n_predict)) {
        stop = "context";
    }
    if (out.t_first == 0.0)
        out.t_first = t_end;
    const double prompt_ms = out.t_first - t0, gen_ms = t_end - out.t_first;
    const double acceptance = use.draft_tokens > 0 ? (double)use.draft_accepted / use.draft_tokens : 0.0;
    const double per_verify = use.verify_steps > 0 ? (double)use.draft_accepted / use.verify_steps : 0.0;

    if (o->json) {
        json_t *j = json_object();
        json_t *timings = json_pack("{s:I, s:f, s:f, s:I, s:f, s:f}", "prompt_n", (json_int_t)n_prompt, "prompt_ms",
                                    prompt_ms, "prompt_per_second", per_second(n_prompt, prompt_ms), "predicted_n",
                                    (json_int_t)n_gen, "predicted_ms", gen_ms, "predicted_per_second",
                                    per_second((size_t)n_gen, gen_ms));
        json_t *spec = json_pack("{s:s, s:i, s:i, s:i, s:f, s:f}", "draft", draft_path, "draft_tokens",
                                 (int)use.draft_tokens, "draft_accepted", (int)use.draft_accepted, "verify_steps",
                                 (int)use.verify_steps, "acceptance_rate", acceptance, "accepted_per_verify", per_verify);
        json_t *str = cli_json_string(out.text.data ? out.text.data : "", out.text.len);
        if (!j || !timings || !spec || !str || out.write_failed) {
            json_decref(j);
            json_decref(timings);
            json_decref(spec);
            json_decref(str);
            cli_runtime_error("out of memory");
            goto done;
        }
        json_object_set_new(j, "prompt_tokens", ids_json(prompt_ids, n_prompt));
        json_object_set_new(j, "tokens", ids_json(res.tokens, (size_t)(n_gen > 0 ? n_gen : 0)));
        json_object_set_new(j, "text", str);
        json_object_set_new(j, "stop", json_string(stop));
        /* the seed given (gen resolves a random one inside its sampler: null then) */
        json_object_set_new(j, "seed", o->sp.seed <= (uint64_t)INT64_MAX ? json_integer((json_int_t)o->sp.seed) : json_null());
        json_object_set_new(j, "timings", timings);
        json_object_set_new(j, "speculative", spec);
        char *s = json_dumps(j, JSON_PRESERVE_ORDER);
        json_decref(j);
        if (!s) {
            cli_runtime_error("out of memory");
            goto done;
        }
        out.write_failed = puts(s) == EOF;
        free(s);
    } else if (isatty(STDOUT_FILENO) && out.last_byte != '\n' && !out.write_failed) {
        putchar('\n');
    }
    if (fflush(stdout) != 0 || out.write_failed) {
        cli_runtime_error("writing the output failed: %s", strerror(errno ? errno : EIO));
        goto done;
    }
    fprintf(stderr, "timings: prompt %zu tokens in %.2f ms (%.2f tokens/s), generation %d tokens in %.2f ms "
                    "(%.2f tokens/s)\n",
            n_prompt, prompt_ms, per_second(n_prompt, prompt_ms), (int)n_gen, gen_ms, per_second((size_t)n_gen, gen_ms));
    fprintf(stderr, "speculative: draft %s, %d proposed, %d accepted (acceptance %.1f%%), %d verify steps, "
                    "%.2f accepted per verify\n",
            draft_path, (int)use.draft_tokens, (int)use.draft_accepted, 100.0 * acceptance, (int)use.verify_steps,
            per_verify);
    rc = CLI_EXIT_OK;
done:
    if (id > 0)
        ponder_gen_release(g, id);
    free(out.text.data);
    ponder_gen_free(g);
    ponder_pool_free(pool);
    free(prompt_ids);
    ponder_tokenizer_free(tok);
    ponder_model_free(dm);
    ponder_model_free(m);
    return rc;
}

int cmd_run(int argc, char **argv)
{
    const char *cmd = "run";
    run_opts o = {
        .n_predict = RUN_DEFAULT_N_PREDICT,
        .n_ctx = RUN_DEFAULT_N_CTX,
        .sp = ponder_sampler_params_default(),
    };
    const cli_opt opts[] = {
        { "-m", "--model", CLI_STRING, &o.model, 0, 0, NULL },
        { "-p", "--prompt", CLI_STRING, &o.prompt, 0, 0, NULL },
        { "-f", "--file", CLI_STRING, &o.file, 0, 0, NULL },
        { "-n", "--n-predict", CLI_INT, &o.n_predict, -1, INT32_MAX, NULL },
        { "-c", "--ctx-size", CLI_INT, &o.n_ctx, 0, INT32_MAX, &o.n_ctx_given },
        { "-t", "--threads", CLI_INT, &o.n_threads, 1, 1024, NULL },
        { "-ctk", "--cache-type-k", CLI_STRING, &o.ctk, 0, 0, NULL },
        { "-ctv", "--cache-type-v", CLI_STRING, &o.ctv, 0, 0, NULL },
        { "--float-activations", NULL, CLI_FLAG, &o.float_act, 0, 0, NULL },
        { "--temp", NULL, CLI_FLOAT, &o.sp.temp, 0, 0, &o.temp_given },
        { "--top-k", NULL, CLI_INT, &o.sp.top_k, 0, 0, NULL },
        { "--top-p", NULL, CLI_FLOAT, &o.sp.top_p, 0, 1, NULL },
        { "--min-p", NULL, CLI_FLOAT, &o.sp.min_p, 0, 1, NULL },
        { "--repeat-penalty", NULL, CLI_FLOAT, &o.sp.repeat_penalty, 0, 0, NULL },
        { "--repeat-last-n", NULL, CLI_INT, &o.sp.repeat_last_n, -1, INT32_MAX, NULL },
        { "-s", "--seed", CLI_SEED, &o.sp.seed, 0, 0, NULL },
        { "--json", NULL, CLI_FLAG, &o.json, 0, 0, NULL },
        { "--special", NULL, CLI_FLAG, &o.special, 0, 0, NULL },
        { "--strategy", NULL, CLI_STRING, &o.strategy, 0, 0, NULL },
        { "--answer", NULL, CLI_STRING, &o.answer, 0, 0, NULL },
        { "--draft", NULL, CLI_STRING, &o.draft, 0, 0, NULL },
        { "--draft-k", NULL, CLI_INT, &o.draft_k, 1, PONDER_GEN_DRAFT_K_MAX, NULL },
    };
    cli_result r = cli_parse(cmd, argc, argv, opts, sizeof opts / sizeof opts[0], NULL, 0, NULL);
    if (r == CLI_HELP) {
        usage();
        return CLI_EXIT_OK;
    }
    if (r != CLI_PARSED)
        return CLI_EXIT_USAGE;
    if (o.prompt && o.file)
        return cli_usage_error(cmd, "give the prompt with -p or -f, not both");
    if (!(o.sp.repeat_penalty > 0.0f))
        return cli_usage_error(cmd, "--repeat-penalty must be > 0, got %g", (double)o.sp.repeat_penalty);
    ponder_strategy strat = { 0 };
    ponder_answer_kind akind = PONDER_ANSWER_NUMBER;
    if (o.strategy) {
        ponder_error serr = { 0 };
        if (ponder_strategy_parse(o.strategy, &strat, &serr) != PONDER_OK)
            return cli_usage_error(cmd, "--strategy: %s", serr.msg);
    }
    if (o.draft_k && !o.draft)
        return cli_usage_error(cmd, "--draft-k needs --draft");
    if (o.special && o.strategy)
        return cli_usage_error(cmd, "--special does not combine with --strategy");
    if (o.strategy && o.n_predict == 0)
        return cli_usage_error(cmd, "--strategy needs -n >= 1 (tokens per chain) or -1 (until the context is full)");
    if (o.answer) {
        if (!o.strategy)
            return cli_usage_error(cmd, "--answer needs --strategy");
        if (strcasecmp(o.answer, "number") == 0)
            akind = PONDER_ANSWER_NUMBER;
        else if (strcasecmp(o.answer, "choice") == 0)
            akind = PONDER_ANSWER_CHOICE;
        else if (strcasecmp(o.answer, "text") == 0)
            akind = PONDER_ANSWER_TEXT;
        else
            return cli_usage_error(cmd, "--answer must be number, choice or text, got '%s'", o.answer);
    }
    ponder_context_params cp = ponder_context_params_default();
    const int bad_cache = cli_set_cache_types(cmd, o.ctk, o.ctv, &cp);
    if (bad_cache != 0)
        return bad_cache;
    cp.float_activations = o.float_act;

    char model_path[PATH_MAX];
    int rc = cli_find_model(cmd, o.model, model_path, sizeof model_path);
    if (rc != 0)
        return rc;

    char *file_text = NULL;
    size_t prompt_len;
    if (o.file) {
        file_text = cli_read_file(o.file, &prompt_len);
        if (!file_text)
            return CLI_EXIT_RUNTIME;
        /* llama.cpp's -f drops one trailing newline (editors add it) */
        if (prompt_len > 0 && file_text[prompt_len - 1] == '\n')
            file_text[--prompt_len] = '\0';
    } else {
        if (!o.prompt)
            o.prompt = RUN_DEFAULT_PROMPT;
        prompt_len = strlen(o.prompt);
    }
    const char *prompt = o.file ? file_text : o.prompt;
    if (o.strategy) {
        if (memchr(prompt, '\0', prompt_len)) {
            free(file_text);
            return cli_runtime_error("%s: the prompt contains a NUL byte", o.file ? o.file : "-p");
        }
        rc = run_strategy(&o, &strat, akind, cp, model_path, prompt);
        free(file_text);
        return rc;
    }
    if (o.draft) {
        char draft_path[PATH_MAX];
        if ((rc = cli_find_model(cmd, o.draft, draft_path, sizeof draft_path)) != 0) {
            free(file_text);
            return rc;
        }
        rc = run_speculative(&o, cp, model_path, draft_path, prompt, prompt_len);
        free(file_text);
        return rc;
    }

    ponder_error err = { 0 };
    ponder_model *m = NULL;
    ponder_tokenizer *tok = NULL;
    ponder_context *ctx = NULL;
    ponder_sampler *smp = NULL;
    ponder_pool *pool = NULL;
    ponder_detokenizer *detok = NULL;
    ponder_token *prompt_ids = NULL;
    size_t n_prompt = 0;
    int32_t *gen = NULL;
    text_buf text = { 0 };
    rc = CLI_EXIT_RUNTIME;

    ponder_model_params mp = ponder_model_params_default();
    if (ponder_model_load(model_path, &mp, &m, &err) != PONDER_OK) {
        cli_runtime_error("%s", err.msg);
        goto done;
    }
    const ponder_hparams *h = ponder_model_hparams(m);
    if (ponder_tokenizer_create(ponder_model_gguf(m), &tok, &err) != PONDER_OK) {
        cli_runtime_error("%s: %s", model_path, err.msg);
        goto done;
    }
    if (ponder_tokenizer_encode(tok, prompt, prompt_len, !o.special, o.special, &prompt_ids, &n_prompt, &err) !=
        PONDER_OK) {
        cli_runtime_error("prompt: %s", err.msg);
        goto done;
    }
    if (n_prompt == 0) {
        cli_runtime_error("the prompt is empty (this model adds no BOS token); give some text with -p or -f");
        goto done;
    }

    if (!o.n_ctx_given)
        cp.n_ctx = h->n_ctx_train > 0 && h->n_ctx_train < RUN_DEFAULT_N_CTX ? h->n_ctx_train : RUN_DEFAULT_N_CTX;
    else
        cp.n_ctx = o.n_ctx == 0 ? h->n_ctx_train : o.n_ctx;
    if (ponder_pool_create(o.n_threads, &pool, &err) != PONDER_OK) {
        cli_runtime_error("%s", err.msg);
        goto done;
    }
    cp.pool = pool;
    if (ponder_context_create(m, &cp, &ctx, &err) != PONDER_OK) {
        cli_runtime_error("%s", err.msg);
        goto done;
    }
    const int32_t n_ctx = ponder_context_n_ctx(ctx);
    if (n_prompt > (size_t)n_ctx) {
        cli_runtime_error("the prompt is %zu tokens but the context holds only %d (raise -c, at most the "
                          "model's %d)",
                          n_prompt, (int)n_ctx, (int)h->n_ctx_train);
        goto done;
    }

    if (o.sp.repeat_last_n < 0)
        o.sp.repeat_last_n = n_ctx;
    if (ponder_sampler_create(&o.sp, h->n_vocab, &smp, &err) != PONDER_OK) {
        cli_runtime_error("%s", err.msg);
        goto done;
    }
    for (size_t i = 0; i < n_prompt; i++)
        ponder_sampler_accept(smp, prompt_ids[i]);
    if (ponder_detokenizer_create(tok, false, &detok, &err) != PONDER_OK) {
        cli_runtime_error("%s", err.msg);
        goto done;
    }
    /* Generated tokens: at most -n, and at most what the context allows. */
    size_t max_gen = (size_t)n_ctx - n_prompt + 1;
    if (o.n_predict >= 0 && (size_t)o.n_predict < max_gen)
        max_gen = (size_t)o.n_predict;
    gen = malloc((max_gen ? max_gen : 1) * sizeof *gen);
    if (!gen) {
        cli_runtime_error("out of memory");
        goto done;
    }

    const double t_prompt0 = cli_now_ms();
    if (ponder_context_decode(ctx, prompt_ids, (int32_t)n_prompt, NULL, &err) != PONDER_OK) {
        cli_runtime_error("decoding the prompt: %s", err.msg);
        goto done;
    }
    const double t_gen0 = cli_now_ms();

    const bool is_tty = !o.json && isatty(STDOUT_FILENO);
    size_t n_gen = 0;
    const char *stop = "length";
    char last_byte = '\n';
    bool write_failed = false;
    while (n_gen < max_gen) {
        int32_t t = ponder_sampler_sample(smp, ponder_context_logits(ctx));
        if (t < 0 || t >= h->n_vocab) {
            cli_runtime_error("sampler returned token %d outside the vocabulary of %d", (int)t, (int)h->n_vocab);
            goto done;
        }
        ponder_sampler_accept(smp, t);
        if (ponder_tokenizer_is_eog(tok, t)) {
            stop = "eog";
            break;
        }
        gen[n_gen++] = t;
        const char *piece;
        size_t piece_len;
        ponder_detokenizer_push(detok, t, &piece, &piece_len);
        if (o.json) {
            if (!text_append(&text, piece, piece_len)) {
                cli_runtime_error("out of memory");
                goto done;
            }
        } else if (piece_len) {
            write_failed |= fwrite(piece, 1, piece_len, stdout) != piece_len || fflush(stdout) != 0;
            last_byte = piece[piece_len - 1];
        }
        if (write_failed)
            break;
        if (n_gen == max_gen) {
            if (o.n_predict < 0 || (size_t)o.n_predict > n_gen)
                stop = "context";
            break;
        }
        if (ponder_context_decode(ctx, &t, 1, NULL, &err) != PONDER_OK) {
            cli_runtime_error("decoding token %zu: %s", n_gen, err.msg);
            goto done;
        }
    }
    const char *tail;
    size_t tail_len;
    ponder_detokenizer_flush(detok, &tail, &tail_len);
    if (o.json) {
        if (!text_append(&text, tail, tail_len)) {
            cli_runtime_error("out of memory");
            goto done;
        }
    } else if (tail_len && !write_failed) {
        write_failed = fwrite(tail, 1, tail_len, stdout) != tail_len;
        last_byte = tail[tail_len - 1];
    }
    const double t_end = cli_now_ms();
    const double prompt_ms = t_gen0 - t_prompt0, gen_ms = t_end - t_gen0;

    if (o.json) {
        json_t *out = json_object();
        json_t *timings = json_pack("{s:I, s:f, s:f, s:I, s:f, s:f}", "prompt_n", (json_int_t)n_prompt, "prompt_ms",
                                    prompt_ms, "prompt_per_second", per_second(n_prompt, prompt_ms), "predicted_n",
                                    (json_int_t)n_gen, "predicted_ms", gen_ms, "predicted_per_second",
                                    per_second(n_gen, gen_ms));
        json_t *str = cli_json_string(text.data ? text.data : "", text.len);
        if (!out || !timings || !str) {
            json_decref(out);
            json_decref(timings);
            json_decref(str);
            cli_runtime_error("out of memory");
            goto done;
        }
        json_object_set_new(out, "prompt_tokens", ids_json(prompt_ids, n_prompt));
        json_object_set_new(out, "tokens", ids_json(gen, n_gen));
        json_object_set_new(out, "text", str);
        json_object_set_new(out, "stop", json_string(stop));
        /* a user-given seed above 2^63 - 1 does not fit JSON integers here: give it as a string */
        const uint64_t seed = ponder_sampler_seed(smp);
        char seed_text[24];
        snprintf(seed_text, sizeof seed_text, "%llu", (unsigned long long)seed);
        json_object_set_new(out, "seed", seed <= (uint64_t)INT64_MAX ? json_integer((json_int_t)seed) : json_string(seed_text));
        json_object_set_new(out, "timings", timings);
        char *s = json_dumps(out, JSON_PRESERVE_ORDER);
        json_decref(out);
        if (!s) {
            cli_runtime_error("out of memory");
            goto done;
        }
        write_failed = puts(s) == EOF;
        free(s);
    } else if (is_tty && last_byte != '\n' && !write_failed) {
        putchar('\n'); /* keep the shell prompt and the timing line off the text's last line */
    }
    if (fflush(stdout) != 0 || write_failed) {
        cli_runtime_error("writing the output failed: %s", strerror(errno ? errno : EIO));
        goto done;
    }

    fprintf(stderr, "timings: prompt %zu tokens in %.2f ms (%.2f tokens/s), generation %zu tokens in %.2f ms "
                    "(%.2f tokens/s)",
            n_prompt, prompt_ms, per_second(n_prompt, prompt_ms), n_gen, gen_ms, per_second(n_gen, gen_ms));
    if (o.sp.temp > 0.0f)
        fprintf(stderr, ", seed %llu", (unsigned long long)ponder_sampler_seed(smp));
    fputc('\n', stderr);
    rc = CLI_EXIT_OK;

done:
    free(text.data);
    free(gen);
    ponder_detokenizer_free(detok);
    ponder_sampler_free(smp);
    free(prompt_ids);
    ponder_context_free(ctx);
    ponder_pool_free(pool);
    ponder_tokenizer_free(tok);
    ponder_model_free(m);
    free(file_text);
    return rc;
}
