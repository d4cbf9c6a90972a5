/*
 * cmd_chat.c — `ponder chat`: a conversation in the terminal, rendered turn by turn with
 * the model's own chat template (src/chat).
 *
 * Each turn renders the whole conversation (system, the turns so far, the new user
 * message, the generation prompt), tokenizes it as the server does (the template's
 * special-token texts parsed, the contents' not: no forged turns; no BOS added: the
 * template writes it) and hands it to gen (gen.h), the one
 * generation loop, whose prompt cache compares those tokens with the ones already in the
 * KV cache: the cache is cut at the first difference and only the rest is evaluated.
 * Usually that is the previous answer's end-of-turn marker and the new message; where the
 * template re-renders an answer differently from the sampled tokens, the cache is cut
 * there. The result is exactly what `ponder run --special` gives on the
 * full rendering (same sampling flags; each turn starts a fresh sampler with -s, whose
 * repetition window holds the rendered prompt, as `ponder run` does).
 *
 * When the conversation no longer fits the context, the oldest turns (a user message and
 * its answer; the system message stays) are dropped until it does, with a note on stderr:
 * the rendering then changes from its start, so that turn evaluates everything again.
 * An answer that fills the context stops there ("context").
 *
 * Terminal (stdin a tty): libedit line editing and history, answers streamed token by
 * token, Ctrl-C stops the answer being written or drops a half-typed line; Ctrl-C twice
 * at an empty prompt, Ctrl-D or /exit leaves.
 * Otherwise each line of stdin is one user message and stdout holds only the answers, one
 * per turn, each followed by a newline (--json: one object per turn instead); notes and
 * the output of /stats and /help go to stderr then.
 */
#include "cli/cli.h"

#include <errno.h>
#include <limits.h>
#include <locale.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef PONDER_CLI_HAVE_LIBEDIT
#include <histedit.h>
#endif

#include "ponder/chat.h"
#include "ponder/gen.h"
#include "ponder/model.h"
#include "ponder/sample.h"
#include "ponder/tokenizer.h"

#define CHAT_DEFAULT_N_CTX 4096   /* as `ponder run`, clipped to n_ctx_train */
#define CHAT_HISTORY_SIZE 1000    /* lines kept for the up-arrow */
#define CHAT_PROMPT "> "

/* Set by the SIGINT handler, read by the generation loop and after the line editor
 * returns. A signal handler can only talk through a static object; this is the one
 * global of the command, and only the terminal mode installs the handler. */
static volatile sig_atomic_t chat_sigint;

static void on_sigint(int sig)
{
    (void)sig;
    chat_sigint = 1;
}

static void usage(void)
{
    ponder_sampler_params d = ponder_sampler_params_default();
    printf("usage: ponder chat [-m MODEL] [--system TEXT] [--chatml] [options]\n"
           "\n"
           "A conversation with the model, rendered with its own chat template\n"
           "(tokenizer.chat_template). On a terminal: line editing and history, answers\n"
           "streamed; Ctrl-C stops an answer or drops a half-typed line; Ctrl-C twice at\n"
           "an empty prompt, Ctrl-D or /exit leaves. With\n"
           "stdin not a terminal each line is one user message and stdout holds only the\n"
           "answers, one per turn, each followed by a newline.\n"
           "\n"
           "Each turn evaluates only what the KV cache does not hold yet (the cache is kept\n"
           "up to the first token where the new rendering differs). When the conversation\n"
           "outgrows the context, its oldest turns are dropped (the system message stays),\n"
           "with a note on stderr.\n"
           "\n"
           "options:\n"
           "  -m, --model MODEL        GGUF file, or a name in $PONDER_MODELS\n"
           "      --system TEXT        a system message first\n"
           "      --chatml             use ChatML for a model without a chat template\n"
           "                           (otherwise such a model is an error)\n"
           "  -n, --n-predict N        most tokens per answer (default: -1, until an\n"
           "                           end-of-generation token or a full context)\n"
           "  -c, --ctx-size N         context size in tokens (default: %d, clipped to the\n"
           "                           model's training context; 0: the training context)\n"
           "  -t, --threads N          threads (default: the number of CPUs)\n"
           "  -ctk, --cache-type-k T   KV cache type for K: f16 (default), f32, q8_0 or q4_0\n"
           "  -ctv, --cache-type-v T   KV cache type for V: f16 (default), f32, q8_0 or q4_0\n"
           "  -fa, --flash-attn M      attention fused over KV blocks: on, off or auto\n"
           "                           (default auto: on for a quantized V cache)\n"
           "      --json               one JSON object per turn on stdout instead of the text:\n"
           "                           {\"answer\", \"finish\": \"stop\"|\"length\"|\"context\"|\n"
           "                           \"interrupted\", \"prompt_tokens\" (the whole rendering),\n"
           "                           \"prompt_tokens_evaluated\" (what the cache lacked),\n"
           "                           \"completion_tokens\", \"ttft_ms\", \"gen_ms\",\n"
           "                           \"tokens_per_s\", \"context_used\", \"n_ctx\",\n"
           "                           \"dropped_turns\"}\n"
           "\n"
           "sampling (as ponder run; each turn starts a fresh sampler with the seed):\n"
           "      --temp T             temperature (default: %.1f; <= 0: greedy)\n"
           "      --top-k K            (default: %d; <= 0: off)\n"
           "      --top-p P            (default: %.2f; 1: off)\n"
           "      --min-p P            (default: %.2f; 0: off)\n"
           "      --repeat-penalty R   (default: %.1f, off)\n"
           "      --repeat-last-n N    (default: %d; 0: off; -1: context)\n"
           "  -s, --seed S             random seed (default: -1, random)\n"
           "  -h, --help               this help\n"
           "\n"
           "commands (a line starting with '/'; '//' sends a message starting with '/'):\n"
           "  /reset   new conversation (the KV cache is cleared)\n"
           "  /stats   tokens in and out, speed of the last answer, context used\n"
           "  /help    these commands\n"
           "  /exit    leave (also /quit, end of input)\n"
           "\n"
           "Exit status: 0 success, 1 runtime error (model, template), 2 usage error.\n",
           CHAT_DEFAULT_N_CTX, (double)d.temp, (int)d.top_k, (double)d.top_p, (double)d.min_p,
           (double)d.repeat_penalty, (int)d.repeat_last_n);
}

typedef struct chat_opts {
    cli_model_opts mo;
    const char *system;
    int32_t n_predict;
    bool chatml, json;
    ponder_sampler_params sp;
} chat_opts;

/* What the last turn cost; the session's totals. */
typedef struct chat_stats {
    int32_t prompt_tokens, prompt_evaluated, completion_tokens, dropped_turns;
    double ttft_ms, gen_ms;
    const char *finish;
    uint64_t total_in, total_out;
} chat_stats;

typedef struct chat {
    chat_opts o;
    bool tty, json;
    cli_engine e;
    ponder_gen *gen;              /* one sequence, the prompt cache on */
    ponder_chat_template *tmpl;
    bool add_bos;                 /* ChatML has no bos_token of its own (as the server) */
    char bos[256], eos[256];      /* the template's bos_token / eos_token texts */
    json_t *messages;             /* the conversation, system message first when given */
    int32_t n_kv;                 /* positions in the KV cache after the last turn */
    int32_t n_ctx;
    chat_stats st;
} chat;

/* One answer as it streams: its text is written as gen hands it over; Ctrl-C cancels. */
typedef struct chat_answer {
    chat *c;
    double t_first;               /* when the first token came */
    bool write_failed, cancelled;
} chat_answer;

/* stdout on a terminal, stderr when stdout must hold only the answers */
static FILE *notes(const chat *c)
{
    return c->tty ? stdout : stderr;
}

static void special_text(const ponder_tokenizer *tok, ponder_token id, char *out, size_t cap)
{
    int32_t n = id == PONDER_TOKEN_NULL ? 0 : ponder_tokenizer_token_to_piece(tok, id, out, (int32_t)cap - 1, true);
    out[n > 0 ? n : 0] = '\0';
}

static bool add_message(json_t *messages, const char *role, const char *text, size_t len)
{
    json_t *content = cli_json_string(text, len);
    json_t *m = content ? json_pack("{s:s, s:o}", "role", role, "content", content) : NULL;
    return m && json_array_append_new(messages, m) == 0;
}

/* The conversation rendered and tokenized into *ids (malloc'ed). */
static ponder_status render(chat *c, ponder_token **ids, size_t *n, ponder_error *err)
{
    json_t *vars = json_pack("{s:O, s:s, s:s, s:b}", "messages", c->messages, "bos_token", c->bos, "eos_token", c->eos,
                             "add_generation_prompt", 1);
    char *vjs = vars ? json_dumps(vars, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(vars);
    if (!vjs)
        return ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory");
    /* contents are text: a message cannot forge a turn (as ponder serve) */
    ponder_status st = ponder_chat_tokenize(c->tmpl, c->e.tok, vjs, strlen(vjs), NULL, c->add_bos, false, ids, n, err);
    free(vjs);
    return st;
}

/* Drops the oldest turn after the system message: a user message and what follows it up
 * to the next user message. False when only the newest message is left. */
static bool drop_oldest_turn(chat *c)
{
    size_t first = 0, n = json_array_size(c->messages);
    if (n && strcmp(json_string_value(json_object_get(json_array_get(c->messages, 0), "role")), "system") == 0)
        first = 1;
    if (n <= first + 1)
        return false;
    json_array_remove(c->messages, first);
    while (json_array_size(c->messages) > first + 1 &&
           strcmp(json_string_value(json_object_get(json_array_get(c->messages, first), "role")), "user") != 0)
        json_array_remove(c->messages, first);
    return true;
}

static void reset_conversation(chat *c)
{
    json_array_clear(c->messages);
    if (c->o.system)
        add_message(c->messages, "system", c->o.system, strlen(c->o.system));
    ponder_gen_cache_clear(c->gen);
    c->n_kv = 0;
    memset(&c->st, 0, sizeof c->st); /* a new conversation's /stats start from nothing */
}

static void print_stats(const chat *c)
{
    const chat_stats *s = &c->st;
    FILE *f = notes(c);
    if (!s->finish) {
        fprintf(f, "no answer yet; context %d of %d tokens used\n", (int)c->n_kv, (int)c->n_ctx);
        return;
    }
    double tps = s->gen_ms > 0.0 ? s->completion_tokens * 1000.0 / s->gen_ms : 0.0;
    fprintf(f,
            "last answer: prompt %d tokens (%d evaluated, %d from the cache), first token after %.1f ms, "
            "%d tokens in %.1f ms (%.2f tokens/s), finish %s\n"
            "session: %llu tokens in, %llu tokens out; context %d of %d tokens used\n",
            (int)s->prompt_tokens, (int)s->prompt_evaluated, (int)(s->prompt_tokens - s->prompt_evaluated), s->ttft_ms,
            (int)s->completion_tokens, s->gen_ms, tps, s->finish, (unsigned long long)s->total_in,
            (unsigned long long)s->total_out, (int)c->n_kv, (int)c->n_ctx);
}

static void print_help(const chat *c)
{
    fprintf(notes(c), "/reset  new conversation\n/stats  tokens and speed of the last answer, context used\n"
                      "/help   this list\n/exit   leave (also /quit, Ctrl-D)\n"
                      "A line starting with '//' is sent as a message starting with '/'.\n");
}

static bool write_json_turn(const chat *c, const char *text, size_t len)
{
    const chat_stats *s = &c->st;
    json_t *o = json_object();
    json_object_set_new(o, "answer", cli_json_string(text, len));
    json_object_set_new(o, "finish", json_string(s->finish));
    json_object_set_new(o, "prompt_tokens", json_integer(s->prompt_tokens));
    json_object_set_new(o, "prompt_tokens_evaluated", json_integer(s->prompt_evaluated));
    json_object_set_new(o, "completion_tokens", json_integer(s->completion_tokens));
    json_object_set_new(o, "ttft_ms", json_real(s->ttft_ms));
    json_object_set_new(o, "gen_ms", json_real(s->gen_ms)); /* after the prompt, as ponder run's predicted_ms */
    json_object_set_new(o, "tokens_per_s", json_real(s->gen_ms > 0.0 ? s->completion_tokens * 1000.0 / s->gen_ms : 0.0));
    json_object_set_new(o, "context_used", json_integer(c->n_kv));
    json_object_set_new(o, "n_ctx", json_integer(c->n_ctx));
    json_object_set_new(o, "dropped_turns", json_integer(s->dropped_turns));
    char *js = json_dumps(o, JSON_PRESERVE_ORDER | JSON_COMPACT);
    json_decref(o);
    bool ok = js && puts(js) != EOF && fflush(stdout) == 0;
    free(js);
    return ok;
}

/* gen's event: the answer's new text goes to stdout (unless --json); Ctrl-C ends it. */
static void on_answer(const ponder_gen_event *ev, void *user)
{
    chat_answer *a = user;
    if (a->t_first == 0.0)
        a->t_first = ponder_now_ms();
    if (ev->text_len && !a->c->json && !a->write_failed)
        a->write_failed = fwrite(ev->text, 1, ev->text_len, stdout) != ev->text_len ||
                          (a->c->tty && fflush(stdout) != 0);
    if ((chat_sigint || a->write_failed) && !a->cancelled && ev->finish == PONDER_FINISH_NONE) {
        a->cancelled = true;
        ponder_gen_cancel(a->c->gen, ev->request_id);
    }
}

/* The conversation with the user's message, rendered and tokenized into *ids so that it
 * fits the context, the oldest turns dropped as needed (*dropped). Returns 0; 1 for an
 * error that ends the session; -1 when the message was refused (reported; the
 * conversation is as it was). */
static int render_turn(chat *c, const char *text, size_t len, ponder_token **ids, size_t *n_ids, int32_t *dropped)
{
    ponder_error err = { 0 };
    /* the conversation as it was, should the message be refused after dropping turns */
    json_t *before = json_copy(c->messages);
    if (!before || !add_message(c->messages, "user", text, len)) {
        json_decref(before);
        return cli_runtime_error("out of memory");
    }
    int rc = 0;
    for (*dropped = 0;; (*dropped)++) {
        free(*ids);
        *ids = NULL;
        ponder_status st = render(c, ids, n_ids, &err);
        if (st == PONDER_ERR_NOMEM) {
            rc = cli_runtime_error("%s", err.msg);
            break;
        }
        if (st != PONDER_OK) {
            /* raise_exception (the template refuses this conversation) or a template error */
            fprintf(stderr, "ponder: the chat template refused the conversation: %s\n", err.msg);
            rc = -1;
            break;
        }
        if (*n_ids > 0 && *n_ids < (size_t)c->n_ctx)
            break;
        if (*n_ids == 0 || !drop_oldest_turn(c)) {
            fprintf(stderr, "ponder: the message makes a prompt of %zu tokens; the context holds %d (raise -c)\n",
                    *n_ids, (int)c->n_ctx);
            rc = -1;
            break;
        }
    }
    if (rc < 0) {
        json_array_clear(c->messages);
        json_array_extend(c->messages, before);
    }
    json_decref(before);
    return rc;
}

/* One turn: the user's text in, the answer out (streamed unless --json). Returns 0, or 1
 * for an error that ends the session (decode, output); a message the conversation
 * cannot take (too long, refused by the template) is reported and dropped. */
static int turn(chat *c, const char *text, size_t len)
{
    ponder_error err = { 0 };
    ponder_token *ids = NULL;
    size_t n_ids = 0;
    int32_t dropped = 0, id = 0;
    const double t0 = ponder_now_ms();
    int rc = render_turn(c, text, len, &ids, &n_ids, &dropped);
    if (rc != 0) {
        free(ids);
        return rc < 0 ? CLI_EXIT_OK : rc;
    }
    if (dropped)
        fprintf(stderr, "(context full: dropped the %d oldest turn%s)\n", (int)dropped, dropped == 1 ? "" : "s");

    /* a fresh sampler with -s each turn, its repetition window holding the rendering, as
     * `ponder run --special` on the whole rendering */
    chat_answer a = { .c = c };
    ponder_gen_request req = { 0 };
    req.prompt = ids;
    req.n_prompt = (int32_t)n_ids;
    req.n_choices = 1;
    req.max_tokens = c->o.n_predict < 0 ? 0 : c->o.n_predict;
    req.sampling = c->o.sp;
    if (req.sampling.repeat_last_n < 0)
        req.sampling.repeat_last_n = c->n_ctx;
    req.penalize_prompt = true;
    req.on_event = on_answer;
    req.user = &a;
    chat_sigint = 0;
    rc = CLI_EXIT_RUNTIME;
    ponder_gen_choice_result res;
    ponder_gen_usage use;
    if (ponder_gen_run(c->gen, &req, &id, &err) != PONDER_OK || ponder_gen_result(c->gen, id, 0, &res, &err) != PONDER_OK ||
        ponder_gen_usage_of(c->gen, id, &use, &err) != PONDER_OK) {
        cli_runtime_error("%s", err.msg);
        goto done;
    }
    const double t_end = ponder_now_ms();
    if (a.t_first == 0.0)
        a.t_first = t_end;
    /* the tokens of the answer: a final end-of-generation token is not part of it; the KV
     * holds the rendering and every answer token but the last sampled */
    int32_t n_gen = res.n_tokens;
    const char *finish = "length";
    if (res.finish == PONDER_FINISH_STOP) {
        finish = "stop";
        n_gen--;
    } else if (res.finish == PONDER_FINISH_CANCELLED) {
        finish = "interrupted";
    } else if (res.finish == PONDER_FINISH_LENGTH && (c->o.n_predict < 0 || c->o.n_predict > n_gen)) {
        finish = "context";
    }
    c->n_kv = (int32_t)n_ids + (res.n_tokens > 0 ? res.n_tokens - 1 : 0);

    /* the answer joins the conversation (a stopped one too, as far as it got) */
    if (!add_message(c->messages, "assistant", res.text, res.text_len)) {
        cli_runtime_error("out of memory");
        goto done;
    }
    chat_stats *s = &c->st;
    s->prompt_tokens = (int32_t)n_ids;
    s->prompt_evaluated = use.prompt_tokens_evaluated;
    s->completion_tokens = n_gen;
    s->dropped_turns = dropped;
    s->ttft_ms = a.t_first - t0;
    s->gen_ms = t_end - a.t_first;
    s->finish = finish;
    s->total_in += (uint64_t)s->prompt_evaluated;
    s->total_out += (uint64_t)n_gen;
    if (c->json)
        a.write_failed |= !write_json_turn(c, res.text, res.text_len);
    else
        a.write_failed |= putchar('\n') == EOF || fflush(stdout) != 0;
    if (a.write_failed) {
        cli_runtime_error("writing the answer failed: %s", strerror(errno ? errno : EIO));
        goto done;
    }
    if (strcmp(finish, "interrupted") == 0)
        fprintf(stderr, "(stopped)\n");
    else if (strcmp(finish, "context") == 0)
        fprintf(stderr, "(the context is full: the answer stops here; the next turn drops the oldest turns)\n");
    rc = CLI_EXIT_OK;
done:
    if (id > 0)
        ponder_gen_release(c->gen, id);
    free(ids);
    return rc;
}

/* A command line; returns 1 to leave, 0 to go on. */
static int command(chat *c, const char *line)
{
    if (strcmp(line, "/exit") == 0 || strcmp(line, "/quit") == 0)
        return 1;
    if (strcmp(line, "/reset") == 0) {
        reset_conversation(c);
        fprintf(notes(c), "(new conversation)\n");
    } else if (strcmp(line, "/stats") == 0) {
        print_stats(c);
    } else if (strcmp(line, "/help") == 0) {
        print_help(c);
    } else {
        fprintf(stderr, "unknown command %s (try /help)\n", line);
    }
    return 0;
}

/* Handles one input line; returns -1 to leave normally, 0 to go on, else an exit status. */
static int handle_line(chat *c, char *line, size_t len)
{
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        line[--len] = '\0';
    if (len == 0)
        return 0;
    if (memchr(line, '\0', len)) {
        fprintf(stderr, "ponder: the message contains a NUL byte; skipped\n");
        return 0;
    }
    if (line[0] == '/' && line[1] != '/')
        return command(c, line) ? -1 : 0;
    if (line[0] == '/') {
        line++;
        len--;
    }
    int rc = turn(c, line, len);
    return rc == CLI_EXIT_OK ? 0 : rc;
}

static int loop_piped(chat *c)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;
    while (rc == 0 && (n = getline(&line, &cap, stdin)) >= 0)
        rc = handle_line(c, line, (size_t)n);
    free(line);
    return rc < 0 ? CLI_EXIT_OK : rc;
}

#ifdef PONDER_CLI_HAVE_LIBEDIT
static char *el_prompt(EditLine *el)
{
    (void)el;
    return CHAT_PROMPT;
}

static int loop_terminal(chat *c)
{
    /* libedit reads characters in the locale's encoding: under the default "C" locale it
     * drops every non-ASCII byte typed. Models speak UTF-8, so a plain "C" environment
     * gets C.UTF-8. Only LC_CTYPE: numbers keep printing with '.' */
    const char *loc = setlocale(LC_CTYPE, "");
    if (!loc || strcmp(loc, "C") == 0 || strcmp(loc, "POSIX") == 0)
        setlocale(LC_CTYPE, "C.UTF-8");
    EditLine *el = el_init("ponder", stdin, stdout, stderr);
    History *hist = history_init();
    if (!el || !hist) {
        if (el)
            el_end(el);
        if (hist)
            history_end(hist);
        return loop_piped(c);
    }
    HistEvent hev;
    history(hist, &hev, H_SETSIZE, CHAT_HISTORY_SIZE);
    history(hist, &hev, H_SETUNIQUE, 1);
    el_set(el, EL_EDITOR, "emacs");
    el_set(el, EL_PROMPT, el_prompt);
    el_set(el, EL_HIST, history, hist);
    el_source(el, NULL); /* ~/.editrc, as other libedit programs */
    int rc = 0;
    bool warned = false; /* the last line ended in Ctrl-C on an empty prompt */
    while (rc == 0) {
        chat_sigint = 0;
        int count = 0;
        const char *got = el_gets(el, &count);
        if (chat_sigint) {
            /* Ctrl-C, as in a shell: a half-typed line is dropped; on an empty prompt it
             * says how to leave, and a second one in a row leaves */
            const LineInfo *li = el_line(el);
            const bool typed = li && li->lastchar > li->buffer;
            el_reset(el);
            fputs("^C\n", stdout);
            if (!typed && warned)
                break;
            if (!typed)
                fputs("(Ctrl-C again, Ctrl-D or /exit to leave)\n", stdout);
            warned = !typed;
            continue;
        }
        warned = false;
        if (!got || count <= 0) {
            /* Ctrl-D (end of input): leave */
            putchar('\n');
            break;
        }
        char *line = strdup(got);
        if (!line) {
            rc = cli_runtime_error("out of memory");
            break;
        }
        size_t len = strlen(line);
        if (len > 1 || (len == 1 && line[0] != '\n'))
            history(hist, &hev, H_ENTER, got);
        rc = handle_line(c, line, len);
        free(line);
    }
    history_end(hist);
    el_end(el);
    return rc < 0 ? CLI_EXIT_OK : rc;
}
#else
/* built without libedit: a terminal reads plain lines (no editing, no history) */
static int loop_terminal(chat *c)
{
    return loop_piped(c);
}
#endif

/* The model's chat template, or ChatML with --chatml for a model without one; the
 * template's bos/eos texts. Returns 0 or the exit status (printed). */
static int load_template(chat *c)
{
    ponder_error err = { 0 };
    const ponder_gguf *g = ponder_model_gguf(c->e.m);
    ponder_status st = ponder_chat_template_from_gguf(g, &c->tmpl, &err);
    if (st == PONDER_ERR_NOT_FOUND && c->o.chatml) {
        const char *src = ponder_chat_template_chatml_source();
        st = ponder_chat_template_create(src, strlen(src), &c->tmpl, &err);
        c->add_bos = true;
    } else if (st == PONDER_ERR_NOT_FOUND) {
        return cli_runtime_error("%s has no chat template (tokenizer.chat_template); use --chatml for ChatML, or "
                                 "ponder run for plain text",
                                 c->e.path);
    }
    if (st != PONDER_OK)
        return cli_runtime_error("%s: the chat template cannot be used: %s", c->e.path, err.msg);
    special_text(c->e.tok, ponder_tokenizer_bos(c->e.tok), c->bos, sizeof c->bos);
    special_text(c->e.tok, ponder_tokenizer_eos(c->e.tok), c->eos, sizeof c->eos);
    return 0;
}

int cmd_chat(int argc, char **argv)
{
    const char *cmd = "chat";
    chat c = { 0 };
    c.o.n_predict = -1;
    c.o.mo.n_ctx = CHAT_DEFAULT_N_CTX;
    c.o.sp = ponder_sampler_params_default();
    const cli_opt opts[] = {
        CLI_MODEL_OPTS(&c.o.mo),
        { "--system", NULL, CLI_STRING, &c.o.system, 0, 0, NULL },
        { "--chatml", NULL, CLI_FLAG, &c.o.chatml, 0, 0, NULL },
        { "-n", "--n-predict", CLI_INT, &c.o.n_predict, -1, INT32_MAX, NULL },
        { "--json", NULL, CLI_FLAG, &c.o.json, 0, 0, NULL },
        { "--temp", NULL, CLI_FLOAT, &c.o.sp.temp, 0, 0, NULL },
        { "--top-k", NULL, CLI_INT, &c.o.sp.top_k, 0, 0, NULL },
        { "--top-p", NULL, CLI_FLOAT, &c.o.sp.top_p, 0, 1, NULL },
        { "--min-p", NULL, CLI_FLOAT, &c.o.sp.min_p, 0, 1, NULL },
        { "--repeat-penalty", NULL, CLI_FLOAT, &c.o.sp.repeat_penalty, 0, 0, NULL },
        { "--repeat-last-n", NULL, CLI_INT, &c.o.sp.repeat_last_n, -1, INT32_MAX, NULL },
        { "-s", "--seed", CLI_SEED, &c.o.sp.seed, 0, 0, NULL },
    };
    cli_result r = cli_parse(cmd, argc, argv, opts, sizeof opts / sizeof opts[0], NULL, 0, NULL);
    if (r == CLI_HELP) {
        usage();
        return CLI_EXIT_OK;
    }
    if (r != CLI_PARSED)
        return CLI_EXIT_USAGE;
    if (!(c.o.sp.repeat_penalty > 0.0f))
        return cli_usage_error(cmd, "--repeat-penalty must be > 0, got %g", (double)c.o.sp.repeat_penalty);
    if (c.o.n_predict == 0)
        return cli_usage_error(cmd, "-n must be >= 1 or -1 (until the end of the answer)");
    c.tty = isatty(STDIN_FILENO);
    c.json = c.o.json;

    int rc = cli_engine_open(cmd, &c.o.mo, CHAT_DEFAULT_N_CTX, &c.e);
    if (rc == 0)
        rc = load_template(&c);
    if (rc == 0) {
        /* one sequence whose KV the prompt cache keeps from turn to turn */
        ponder_gen_params gp = ponder_gen_params_default();
        gp.context = c.e.cp;
        gp.cache_prompts = true;
        ponder_error err = { 0 };
        if (ponder_gen_create(c.e.m, c.e.tok, &gp, &c.gen, &err) != PONDER_OK)
            rc = cli_runtime_error("%s", err.msg);
    }
    if (rc == 0 && !(c.messages = json_array()))
        rc = cli_runtime_error("out of memory");
    if (rc != 0)
        goto done;
    c.n_ctx = ponder_context_n_ctx(ponder_gen_context(c.gen));
    reset_conversation(&c);

    if (c.tty) {
        struct sigaction sa = { 0 };
        sa.sa_handler = on_sigint;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = 0; /* no SA_RESTART: a blocked read returns, so Ctrl-C reaches the prompt loop */
        sigaction(SIGINT, &sa, NULL);
        fprintf(stdout, "ponder chat: %s (%s, context %d tokens). /help for commands, Ctrl-D to leave.\n",
                c.e.path, c.add_bos ? "ChatML" : "the model's chat template", (int)c.n_ctx);
        rc = loop_terminal(&c);
    } else {
        rc = loop_piped(&c);
    }
done:
    json_decref(c.messages);
    ponder_gen_free(c.gen);
    ponder_chat_template_free(c.tmpl);
    cli_engine_close(&c.e);
    return rc;
}
