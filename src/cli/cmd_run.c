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
 * Every mode decodes through the gen engine (gen.h), the one generation loop: plain
 * generation is one request of one choice whose repetition window starts with the prompt;
 * --draft adds a draft model proposing tokens; --strategy hands the prompt to a think
 * strategy (think.h), whose chains gen decodes (sc/bon as one request sharing the
 * prompt's KV), and --json prints the strategy result (cli_think_json, cmd_eval.c).
 */
#include "cli/cli.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
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
           "  -ctk, --cache-type-k T   KV cache type for K: f16 (default), f32, q8_0 or q4_0\n"
           "  -ctv, --cache-type-v T   KV cache type for V: f16 (default), f32, q8_0 or q4_0\n"
           "  -fa, --flash-attn M      attention fused over KV blocks: on, off or auto\n"
           "                           (default auto: on for a quantized V cache)\n"
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
           "                            \"stop\": \"length\"|\"eog\"|\"context\"|\"grammar\",\n"
           "                            \"seed\": S,\n"
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
           "                           Without --temp: greedy for direct/cot, otherwise the\n"
           "                           model's ponder.sampled_temp metadata, else %.1f\n"
           "                           direct is the prompt as given, one chain\n"
           "                           Prints the chosen chain; --json prints {\"answer\",\n"
           "                           \"strategy\", \"samples\": [{\"text\", \"answer\", \"tokens\",\n"
           "                           \"mean_logprob\"}], \"votes\": {answer: count},\n"
           "                           \"agreement\" (top votes / chains with an answer),\n"
           "                           \"usage\": {\"prompt_tokens\", \"prompt_tokens_evaluated\",\n"
           "                           \"completion_tokens\", \"flops\"}, \"timings\": {\"wall_ms\"}}\n"
           "      --answer KIND        what to extract: number (default), choice (a letter) or\n"
           "                           text (the first line)\n"
           "      --cue, --no-cue      append the cue (cot, sc, asc, bon) or not; default: the\n"
           "                           model's ponder.cue metadata (ponder train writes it for\n"
           "                           models trained on their own format), else --cue\n"
           "      --verifier FILE      bon: a verifier model judges every chain, the best wins\n"
           "      --verifier-vote      bon with --verifier: the answer whose chains' scores add\n"
           "                           up highest wins\n"
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
           "\n"
           "structured output:\n"
           "      --json-schema FILE   the text is JSON valid against this JSON Schema (objects,\n"
           "                           arrays, enum, const, lengths, patterns, integer bounds,\n"
           "                           anyOf, $ref...; an unsupported keyword is an error naming\n"
           "                           it); -n closes the JSON in time rather than cutting it\n"
           "      --grammar FILE       the text follows this GBNF grammar (llama.cpp's syntax);\n"
           "                           stop \"grammar\" when it is complete and nothing can follow\n"
           "  -h, --help               this help\n"
           "\n"
           "Exit status: 0 success, 1 runtime error (model, file, prompt longer than the\n"
           "context), 2 usage error.\n",
           RUN_DEFAULT_PROMPT, RUN_DEFAULT_N_PREDICT, RUN_DEFAULT_N_CTX, (double)d.repeat_penalty,
           (int)d.repeat_last_n, (int)d.top_k, (double)d.top_p, (double)d.min_p, (double)d.temp,
           (double)PONDER_THINK_SAMPLED_TEMP);
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
    cli_model_opts mo;
    const char *prompt, *file, *strategy, *answer, *json_schema, *grammar_file;
    ponder_grammar *grammar; /* from --json-schema or --grammar */
    int32_t n_predict, draft_k;
    bool json, temp_given, special, cue, no_cue, verifier_vote;
    ponder_sampler_params sp;
} run_opts;

/* `ponder run --strategy`: the prompt through a think strategy on a gen engine. */
static int run_strategy(const run_opts *o, const ponder_strategy_plan *plan, cli_engine *e, const char *prompt)
{
    ponder_error err = { 0 };
    ponder_gen *g = NULL;
    ponder_think_result *res = NULL;
    const ponder_strategy *strat = &plan->strategy;
    ponder_think_params p = ponder_think_params_default();
    p.sampling = o->sp;
    ponder_think_params_from_plan(&p, plan, o->temp_given);
    p.grammar = o->grammar;
    p.verifier = e->verifier;
    p.verifier_vote = o->verifier_vote;
    p.max_tokens = o->n_predict < 0 ? 0 : o->n_predict;
    if (p.sampling.repeat_last_n < 0)
        p.sampling.repeat_last_n = e->cp.n_ctx;
    const int32_t n_seq = ponder_think_job_max_choices(&p);
    /* the prompt's cells are shared by the chains: room for one prompt and every chain's own
     * tokens (and a draft's proposals), instead of n_ctx per chain */
    int32_t n_cells = 0;
    const int64_t per_chain = (int64_t)p.max_tokens + 1 + (e->draft ? PONDER_GEN_DRAFT_K_MAX : 0);
    if (p.max_tokens > 0 && (int64_t)e->cp.n_ctx + (int64_t)n_seq * per_chain < (int64_t)e->cp.n_ctx * n_seq)
        n_cells = (int32_t)(e->cp.n_ctx + n_seq * per_chain);
    int rc = cli_engine_gen(e, n_seq, n_cells, o->draft_k, &g);
    if (rc != 0)
        return rc;
    rc = CLI_EXIT_RUNTIME;
    if (ponder_think_run(g, e->tok, &p, prompt, &res, &err) != PONDER_OK) {
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
            (int)(strat->kind == PONDER_THINK_BON ? 1 : top), (int)res->n_samples, res->agreement,
            (unsigned long long)res->usage.prompt_tokens, (unsigned long long)res->usage.prompt_tokens_evaluated,
            (unsigned long long)res->usage.completion_tokens, (double)res->usage.flops, res->usage.wall_ms);
    rc = CLI_EXIT_OK;
done:
    ponder_think_result_free(res);
    ponder_gen_free(g);
    return rc;
}

/* What `ponder run` streams and counts while gen decodes. */
typedef struct run_out {
    bool json, write_failed;
    text_buf text;
    char last_byte;
    double t_first;     /* when the first token came (the prompt is done) */
} run_out;

static void run_on_event(const ponder_gen_event *ev, void *user)
{
    run_out *o = user;
    if (o->t_first == 0.0)
        o->t_first = ponder_now_ms();
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

/* One generation's numbers, for the JSON and the stderr lines. */
typedef struct run_stats {
    size_t n_prompt;
    int32_t n_gen;
    const char *stop;
    double prompt_ms, gen_ms;
    ponder_gen_usage use;
    uint64_t seed;
} run_stats;

static json_t *seed_json(uint64_t seed)
{
    /* a user-given seed above 2^63 - 1 does not fit JSON integers here: give it as a string */
    char text[24];
    snprintf(text, sizeof text, "%llu", (unsigned long long)seed);
    return seed <= (uint64_t)INT64_MAX ? json_integer((json_int_t)seed) : json_string(text);
}

/* --json's object: prompt_tokens, tokens, text, stop, seed, timings (+ speculative). */
static bool print_json(const run_opts *o, const cli_engine *e, const run_stats *st, const ponder_token *prompt_ids,
                       const ponder_gen_choice_result *res, const run_out *out)
{
    const double pm = st->prompt_ms, gm = st->gen_ms;
    json_t *j = json_object();
    json_t *timings = json_pack("{s:I, s:f, s:f, s:I, s:f, s:f}", "prompt_n", (json_int_t)st->n_prompt, "prompt_ms",
                                pm, "prompt_per_second", per_second(st->n_prompt, pm), "predicted_n",
                                (json_int_t)st->n_gen, "predicted_ms", gm, "predicted_per_second",
                                per_second((size_t)st->n_gen, gm));
    json_t *str = cli_json_string(out->text.data ? out->text.data : "", out->text.len);
    json_t *spec = NULL;
    const ponder_gen_usage *u = &st->use;
    if (e->draft)
        spec = json_pack("{s:s, s:i, s:i, s:i, s:f, s:f}", "draft", e->draft_path, "draft_tokens",
                         (int)u->draft_tokens, "draft_accepted", (int)u->draft_accepted, "verify_steps",
                         (int)u->verify_steps, "acceptance_rate",
                         u->draft_tokens > 0 ? (double)u->draft_accepted / u->draft_tokens : 0.0,
                         "accepted_per_verify", u->verify_steps > 0 ? (double)u->draft_accepted / u->verify_steps : 0.0);
    if (!j || !timings || !str || (e->draft && !spec) || out->write_failed) {
        json_decref(j);
        json_decref(timings);
        json_decref(spec);
        json_decref(str);
        return false;
    }
    json_object_set_new(j, "prompt_tokens", ids_json(prompt_ids, st->n_prompt));
    json_object_set_new(j, "tokens", ids_json(res->tokens, (size_t)(st->n_gen > 0 ? st->n_gen : 0)));
    json_object_set_new(j, "text", str);
    json_object_set_new(j, "stop", json_string(st->stop));
    /* --draft: the seed given (null for a random one); else the seed the sampler used */
    if (e->draft)
        json_object_set_new(j, "seed", o->sp.seed <= (uint64_t)INT64_MAX ? json_integer((json_int_t)o->sp.seed)
                                                                           : json_null());
    else
        json_object_set_new(j, "seed", seed_json(st->seed));
    json_object_set_new(j, "timings", timings);
    if (spec)
        json_object_set_new(j, "speculative", spec);
    char *s = json_dumps(j, JSON_PRESERVE_ORDER);
    json_decref(j);
    bool ok = s && puts(s) != EOF;
    free(s);
    return ok;
}

/* `ponder run` without --strategy: one request of one choice on gen (with --draft, a draft
 * model proposes tokens; its repetition window holds the generated tokens only, as for
 * the server's requests, where plain generation starts it with the prompt as llama-cli). */
static int run_generate(const run_opts *o, cli_engine *e, const char *prompt, size_t prompt_len)
{
    ponder_error err = { 0 };
    ponder_gen *g = NULL;
    ponder_token *prompt_ids = NULL;
    int32_t id = 0;
    run_out out = { .json = o->json, .last_byte = '\n' };
    run_stats st = { .stop = "length", .seed = o->sp.seed };
    int rc = cli_engine_encode(e, prompt, prompt_len, o->special, &prompt_ids, &st.n_prompt);
    if (rc == 0)
        rc = cli_engine_gen(e, 1, 0, o->draft_k, &g);
    if (rc != 0)
        goto done;
    rc = CLI_EXIT_RUNTIME;
    ponder_gen_request req = { 0 };
    req.prompt = prompt_ids;
    req.n_prompt = (int32_t)st.n_prompt;
    req.n_choices = 1;
    req.max_tokens = o->n_predict < 0 ? 0 : o->n_predict;
    req.sampling = o->sp;
    if (req.sampling.repeat_last_n < 0)
        req.sampling.repeat_last_n = e->cp.n_ctx;
    req.penalize_prompt = !e->draft;
    req.grammar = o->grammar;
    req.on_event = run_on_event;
    req.user = &out;
    const double t0 = ponder_now_ms();
    if (o->n_predict != 0 && ponder_gen_run(g, &req, &id, &err) != PONDER_OK) {
        cli_runtime_error("%s", err.msg);
        goto done;
    }
    const double t_end = ponder_now_ms();
    ponder_gen_choice_result res = { 0 };
    if (id > 0 && (ponder_gen_result(g, id, 0, &res, &err) != PONDER_OK ||
                   ponder_gen_usage_of(g, id, &st.use, &err) != PONDER_OK)) {
        cli_runtime_error("%s", err.msg);
        goto done;
    }
    if (id > 0)
        st.seed = res.seed;
    /* the tokens printed: a final end-of-generation token is not part of the text */
    st.n_gen = res.n_tokens;
    if (res.finish == PONDER_FINISH_STOP && o->grammar &&
        (res.n_tokens == 0 || !ponder_tokenizer_is_eog(e->tok, res.tokens[res.n_tokens - 1]))) {
        st.stop = "grammar"; /* complete, nothing else could follow */
    } else if (res.finish == PONDER_FINISH_STOP) {
        st.stop = "eog";
        st.n_gen--;
    } else if (res.finish == PONDER_FINISH_LENGTH && (o->n_predict < 0 || st.n_gen < o->n_predict)) {
        st.stop = "context";
    }
    if (out.t_first == 0.0)
        out.t_first = t_end;
    st.prompt_ms = out.t_first - t0;
    st.gen_ms = t_end - out.t_first;
    if (o->json) {
        if (!print_json(o, e, &st, prompt_ids, &res, &out))
            out.write_failed = true;
    } else if (isatty(STDOUT_FILENO) && out.last_byte != '\n' && !out.write_failed) {
        putchar('\n'); /* keep the shell prompt and the timing line off the text's last line */
    }
    if (fflush(stdout) != 0 || out.write_failed) {
        cli_runtime_error("writing the output failed: %s", strerror(errno ? errno : EIO));
        goto done;
    }
    fprintf(stderr, "timings: prompt %zu tokens in %.2f ms (%.2f tokens/s), generation %d tokens in %.2f ms "
                    "(%.2f tokens/s)",
            st.n_prompt, st.prompt_ms, per_second(st.n_prompt, st.prompt_ms), (int)st.n_gen, st.gen_ms,
            per_second((size_t)st.n_gen, st.gen_ms));
    if (!e->draft && o->sp.temp > 0.0f)
        fprintf(stderr, ", seed %llu", (unsigned long long)st.seed);
    fputc('\n', stderr);
    if (e->draft) {
        const ponder_gen_usage *u = &st.use;
        fprintf(stderr, "speculative: draft %s, %d proposed, %d accepted (acceptance %.1f%%), %d verify steps, "
                        "%.2f accepted per verify\n",
                e->draft_path, (int)u->draft_tokens, (int)u->draft_accepted,
                100.0 * (u->draft_tokens > 0 ? (double)u->draft_accepted / u->draft_tokens : 0.0),
                (int)u->verify_steps, u->verify_steps > 0 ? (double)u->draft_accepted / u->verify_steps : 0.0);
    }
    rc = CLI_EXIT_OK;
done:
    if (id > 0)
        ponder_gen_release(g, id);
    free(out.text.data);
    ponder_gen_free(g);
    free(prompt_ids);
    return rc;
}

/* The strategy flags through think's one rule (ponder_strategy_plan_make); the model's cue
 * and temperature defaults are applied once the model is loaded (prefs NULL before).
 * Returns 0 or the usage error's status. */
static int plan_strategy(const char *cmd, const run_opts *o, const ponder_think_model_prefs *prefs,
                         ponder_strategy_plan *plan)
{
    char answer[16] = "";
    for (size_t i = 0; o->answer && o->answer[i] && i + 1 < sizeof answer; i++)
        answer[i] = (char)tolower((unsigned char)o->answer[i]);
    ponder_strategy_ask ask = {
        .strategy = o->strategy,
        .cue = o->cue ? PONDER_CUE_ON : o->no_cue ? PONDER_CUE_OFF : PONDER_CUE_MODEL,
        .answer = o->answer ? (strlen(o->answer) < sizeof answer ? answer : o->answer) : NULL,
    };
    ponder_error err = { 0 };
    if (ponder_strategy_plan_make(&ask, prefs, plan, &err) != PONDER_OK) {
        if (plan->field && strcmp(plan->field, "answer") == 0)
            return cli_usage_error(cmd, "--answer must be number, choice or text, got '%s'", o->answer);
        return cli_usage_error(cmd, "--strategy: %s", err.msg);
    }
    return 0;
}

/* The flags that do not combine; 0 or the usage error's status. */
static int check_flags(const char *cmd, const run_opts *o)
{
    if (o->prompt && o->file)
        return cli_usage_error(cmd, "give the prompt with -p or -f, not both");
    if (!(o->sp.repeat_penalty > 0.0f))
        return cli_usage_error(cmd, "--repeat-penalty must be > 0, got %g", (double)o->sp.repeat_penalty);
    if (o->draft_k && !o->mo.draft)
        return cli_usage_error(cmd, "--draft-k needs --draft");
    if (o->special && o->strategy)
        return cli_usage_error(cmd, "--special does not combine with --strategy");
    if (o->strategy && o->n_predict == 0)
        return cli_usage_error(cmd, "--strategy needs -n >= 1 (tokens per chain) or -1 (until the context is full)");
    if (o->answer && !o->strategy)
        return cli_usage_error(cmd, "--answer needs --strategy");
    if ((o->cue || o->no_cue) && !o->strategy)
        return cli_usage_error(cmd, "--%s needs --strategy", o->cue ? "cue" : "no-cue");
    if (o->cue && o->no_cue)
        return cli_usage_error(cmd, "give --cue or --no-cue, not both");
    if (o->json_schema && o->grammar_file)
        return cli_usage_error(cmd, "give --json-schema or --grammar, not both");
    return 0;
}

/* --json-schema FILE / --grammar FILE → o->grammar; 0 or the error's status. */
static int load_grammar(run_opts *o)
{
    const char *path = o->json_schema ? o->json_schema : o->grammar_file;
    if (!path)
        return 0;
    size_t len;
    char *text = cli_read_file(path, &len);
    if (!text)
        return CLI_EXIT_RUNTIME;
    ponder_error err = { 0 };
    ponder_status st = o->json_schema ? ponder_grammar_from_json_schema(text, len, &o->grammar, &err)
                                      : ponder_grammar_parse(text, len, &o->grammar, &err);
    free(text);
    if (st != PONDER_OK)
        return cli_runtime_error("%s: %s", path, err.msg);
    return 0;
}

int cmd_run(int argc, char **argv)
{
    const char *cmd = "run";
    run_opts o = {
        .n_predict = RUN_DEFAULT_N_PREDICT,
        .mo.n_ctx = RUN_DEFAULT_N_CTX,
        .sp = ponder_sampler_params_default(),
    };
    const cli_opt opts[] = {
        CLI_MODEL_OPTS(&o.mo),
        { "-p", "--prompt", CLI_STRING, &o.prompt, 0, 0, NULL },
        { "-f", "--file", CLI_STRING, &o.file, 0, 0, NULL },
        { "-n", "--n-predict", CLI_INT, &o.n_predict, -1, INT32_MAX, NULL },
        { "--float-activations", NULL, CLI_FLAG, &o.mo.float_act, 0, 0, NULL },
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
        { "--cue", NULL, CLI_FLAG, &o.cue, 0, 0, NULL },
        { "--no-cue", NULL, CLI_FLAG, &o.no_cue, 0, 0, NULL },
        { "--verifier", NULL, CLI_STRING, &o.mo.verifier, 0, 0, NULL },
        { "--verifier-vote", NULL, CLI_FLAG, &o.verifier_vote, 0, 0, NULL },
        { "--draft", NULL, CLI_STRING, &o.mo.draft, 0, 0, NULL },
        { "--draft-k", NULL, CLI_INT, &o.draft_k, 1, PONDER_GEN_DRAFT_K_MAX, NULL },
        { "--json-schema", NULL, CLI_STRING, &o.json_schema, 0, 0, NULL },
        { "--grammar", NULL, CLI_STRING, &o.grammar_file, 0, 0, NULL },
    };
    cli_result r = cli_parse(cmd, argc, argv, opts, sizeof opts / sizeof opts[0], NULL, 0, NULL);
    if (r == CLI_HELP) {
        usage();
        return CLI_EXIT_OK;
    }
    if (r != CLI_PARSED)
        return CLI_EXIT_USAGE;
    ponder_strategy_plan plan = { 0 };
    int rc = check_flags(cmd, &o);
    if (rc == 0 && o.strategy)
        rc = plan_strategy(cmd, &o, NULL, &plan);
    if (rc == 0 && o.verifier_vote && !o.mo.verifier)
        rc = cli_usage_error(cmd, "--verifier-vote needs --verifier FILE");
    if (rc == 0 && o.mo.verifier && (!o.strategy || plan.strategy.kind != PONDER_THINK_BON))
        rc = cli_usage_error(cmd, "--verifier judges the chains of --strategy bon:N");
    if (rc == 0)
        rc = load_grammar(&o);
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
    cli_engine e;
    rc = cli_engine_open(cmd, &o.mo, RUN_DEFAULT_N_CTX, &e);
    if (rc == 0 && o.strategy) {
        if (memchr(prompt, '\0', prompt_len))
            rc = cli_runtime_error("%s: the prompt contains a NUL byte", o.file ? o.file : "-p");
        else {
            const ponder_think_model_prefs prefs = ponder_think_model_defaults(e.m);
            if ((rc = plan_strategy(cmd, &o, &prefs, &plan)) == 0)
                rc = run_strategy(&o, &plan, &e, prompt);
        }
    } else if (rc == 0) {
        rc = run_generate(&o, &e, prompt, prompt_len);
    }
    cli_engine_close(&e);
    free(file_text);
    ponder_grammar_free(o.grammar);
    return rc;
}
