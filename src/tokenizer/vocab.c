/*
 * vocab.c — builds a ponder_tokenizer from the tokenizer.ggml.* metadata of a GGUF file,
 * following llama.cpp's llama_vocab::impl::load at c392e509: defaults per tokenizer type
 * and pre-tokenizer, special ids, token attributes (including the promotion of
 * end-of-turn/FIM-looking tokens to CONTROL), the end-of-generation set and the special
 * token list used to cut special tokens out of the text. Also the simple accessors.
 *
 * Stricter than llama.cpp where it would crash or silently misbehave: array lengths must
 * equal the token count, merges must read "a b", duplicate tokens and special ids out of
 * range are errors (except 0xFFFFFFFF / -1, which converters write for "none").
 */
#include "tokenizer/tok_internal.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MODEL "tokenizer.ggml.model"
#define KEY_PRE "tokenizer.ggml.pre"
#define KEY_TOKENS "tokenizer.ggml.tokens"
#define KEY_SCORES "tokenizer.ggml.scores"
#define KEY_TYPES "tokenizer.ggml.token_type"
#define KEY_MERGES "tokenizer.ggml.merges"

/* llama.cpp's default special ids per tokenizer type (llama_vocab::impl::load) */
#define SPM_DEFAULT_BOS 1
#define SPM_DEFAULT_EOS 2
#define SPM_DEFAULT_UNK 0
#define BPE_DEFAULT_BOS 11
#define BPE_DEFAULT_EOS 11

static ponder_status fail_nomem(ponder_error *err, const char *what)
{
    return ponder_error_set(err, PONDER_ERR_NOMEM, "tokenizer: out of memory for %s", what);
}

/* Reads an optional array key; absent -> *out NULL and OK. */
static ponder_status get_opt_arr(const ponder_gguf *g, const char *key, const ponder_gguf_array **out,
                                 ponder_error *err)
{
    *out = NULL;
    ponder_status st = ponder_gguf_get_arr(g, key, PONDER_GGUF_TYPE_COUNT, out, err);
    if (st == PONDER_ERR_NOT_FOUND) {
        *out = NULL;
        return PONDER_OK;
    }
    return st;
}

static ponder_status get_opt_bool(const ponder_gguf *g, const char *key, bool *val, ponder_error *err)
{
    bool b;
    ponder_status st = ponder_gguf_get_bool(g, key, &b, err);
    if (st == PONDER_ERR_NOT_FOUND)
        return PONDER_OK;
    if (st == PONDER_OK)
        *val = b;
    return st;
}

/* A special id key: absent, 0xFFFFFFFF or -1 keep *id; a value outside the vocabulary is
 * an error. */
static ponder_status get_special_id(const ponder_gguf *g, const char *key, int32_t n_vocab, ponder_token *id,
                                    ponder_error *err)
{
    int64_t v;
    ponder_status st = ponder_gguf_get_i64(g, key, &v, err);
    if (st == PONDER_ERR_NOT_FOUND)
        return PONDER_OK;
    if (st != PONDER_OK)
        return st;
    if (v == -1 || v == (int64_t)UINT32_MAX)
        return PONDER_OK;
    if (v < 0 || v >= n_vocab)
        return ponder_error_set(err, PONDER_ERR_FORMAT, "%s = %" PRId64 " is outside the vocabulary (%" PRId32 " tokens)",
                                key, v, n_vocab);
    *id = (ponder_token)v;
    return PONDER_OK;
}

static ponder_token find_text(const ponder_tokenizer *t, const char *s)
{
    return tok_lookup(t, s, strlen(s));
}

/* llama.cpp overrides the type of such tokens to CONTROL (replacing the old attributes) */
static void promote_control(ponder_tokenizer *t, ponder_token id)
{
    if (!(t->attr[id] & TOK_ATTR_CONTROL)) {
        t->attr[id] = TOK_ATTR_CONTROL;
        t->kind_of[id] = PONDER_TOKEN_CONTROL;
    }
}

/* If *id is unset, the first listed text present in the vocabulary becomes it. */
static void detect_special(ponder_tokenizer *t, ponder_token *id, const char *const *texts)
{
    if (*id != PONDER_TOKEN_NULL)
        return;
    for (; *texts; texts++) {
        ponder_token found = find_text(t, *texts);
        if (found >= 0) {
            *id = found;
            promote_control(t, found);
            return;
        }
    }
}

static int cmp_token(const void *a, const void *b)
{
    ponder_token x = *(const ponder_token *)a, y = *(const ponder_token *)b;
    return (x > y) - (x < y);
}

/* special-list sort key: longest text first; ties by id so the order is the same everywhere */
typedef struct special_key {
    size_t len;
    ponder_token id;
} special_key;

static int cmp_special(const void *a, const void *b)
{
    const special_key *x = a, *y = b;
    if (x->len != y->len)
        return x->len > y->len ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

static ponder_status load_tokens(ponder_tokenizer *t, const ponder_gguf *g, ponder_error *err)
{
    ponder_status st;
    const ponder_gguf_array *toks, *scores, *types;

    st = ponder_gguf_get_arr(g, KEY_TOKENS, PONDER_GGUF_STRING, &toks, err);
    if (st == PONDER_ERR_NOT_FOUND)
        return ponder_error_set(err, st, "tokenizer: %s is missing", KEY_TOKENS);
    if (st != PONDER_OK)
        return st;
    if (toks->n == 0)
        return ponder_error_set(err, PONDER_ERR_FORMAT, "tokenizer: %s is empty", KEY_TOKENS);
    if (toks->n > (uint64_t)INT32_MAX - 1)
        return ponder_error_set(err, PONDER_ERR_RANGE, "tokenizer: %s has %" PRIu64 " tokens (limit %d)", KEY_TOKENS,
                                toks->n, INT32_MAX - 1);
    int32_t n = (int32_t)toks->n;
    t->n_vocab = n;

    if ((st = get_opt_arr(g, KEY_SCORES, &scores, err)) != PONDER_OK)
        return st;
    if (scores) {
        if (scores->elem_type != PONDER_GGUF_FLOAT32 && scores->elem_type != PONDER_GGUF_INT32)
            return ponder_error_set(err, PONDER_ERR_FORMAT, "tokenizer: %s has %s elements; expected f32 or i32",
                                    KEY_SCORES, ponder_gguf_type_name(scores->elem_type));
        if (scores->n != toks->n)
            return ponder_error_set(err, PONDER_ERR_FORMAT, "tokenizer: %s has %" PRIu64 " entries; %s has %d",
                                    KEY_SCORES, scores->n, KEY_TOKENS, n);
    }
    if ((st = get_opt_arr(g, KEY_TYPES, &types, err)) != PONDER_OK)
        return st;
    if (types) {
        ponder_gguf_type et = types->elem_type;
        bool is_int = et == PONDER_GGUF_INT32 || et == PONDER_GGUF_UINT32 || et == PONDER_GGUF_INT8 ||
                      et == PONDER_GGUF_UINT8 || et == PONDER_GGUF_INT16 || et == PONDER_GGUF_UINT16 ||
                      et == PONDER_GGUF_INT64 || et == PONDER_GGUF_UINT64;
        if (!is_int)
            return ponder_error_set(err, PONDER_ERR_FORMAT, "tokenizer: %s has %s elements; expected i32",
                                    KEY_TYPES, ponder_gguf_type_name(et));
        if (types->n != toks->n)
            return ponder_error_set(err, PONDER_ERR_FORMAT, "tokenizer: %s has %" PRIu64 " entries; %s has %d",
                                    KEY_TYPES, types->n, KEY_TOKENS, n);
    }

    /* all texts in one buffer; llama.cpp renames an empty token to "[EMPTY_<id>]" */
    uint64_t total = 0;
    for (int32_t i = 0; i < n; i++) {
        uint64_t len = ponder_gguf_array_str(toks, (uint64_t)i).len;
        total += (len ? len : 24) + 1;
        if (total > UINT32_MAX)
            return ponder_error_set(err, PONDER_ERR_RANGE, "tokenizer: token texts exceed 4 GiB");
    }
    t->text_buf = malloc((size_t)total);
    t->text_off = malloc(((size_t)n + 1) * sizeof *t->text_off);
    t->scores = malloc((size_t)n * sizeof *t->scores);
    t->attr = malloc((size_t)n * sizeof *t->attr);
    t->kind_of = malloc((size_t)n);
    if (!t->text_buf || !t->text_off || !t->scores || !t->attr || !t->kind_of)
        return fail_nomem(err, "the vocabulary");
    uint32_t off = 0;
    for (int32_t i = 0; i < n; i++) {
        ponder_gguf_str s = ponder_gguf_array_str(toks, (uint64_t)i);
        t->text_off[i] = off;
        if (s.len == 0) {
            off += (uint32_t)snprintf(t->text_buf + off, 25, "[EMPTY_%" PRId32 "]", i) + 1;
        } else {
            memcpy(t->text_buf + off, s.data, s.len);
            t->text_buf[off + s.len] = '\0';
            off += (uint32_t)s.len + 1;
        }
    }
    t->text_off[n] = off;

    if ((st = tok_map_init(&t->token_map, (size_t)n, err)) != PONDER_OK)
        return st;
    for (int32_t i = 0; i < n; i++) {
        size_t len;
        const char *s = tok_text(t, i, &len);
        if (!tok_map_insert(&t->token_map, s, len, i))
            return ponder_error_set(err, PONDER_ERR_FORMAT, "tokenizer: token %d '%.*s' duplicates token %d", i,
                                    (int)(len > 64 ? 64 : len), s, tok_map_get(&t->token_map, s, len));
    }

    for (int32_t i = 0; i < n; i++) {
        t->scores[i] = 0.0f;
        if (scores)
            t->scores[i] = scores->elem_type == PONDER_GGUF_FLOAT32 ? (float)ponder_gguf_array_f64(scores, (uint64_t)i)
                                                                    : (float)ponder_gguf_array_i64(scores, (uint64_t)i);
        int64_t ty = types ? ponder_gguf_array_i64(types, (uint64_t)i) : PONDER_TOKEN_NORMAL;
        uint16_t a;
        switch (ty) {
        case PONDER_TOKEN_NORMAL: a = TOK_ATTR_NORMAL; break;
        case PONDER_TOKEN_UNKNOWN: a = TOK_ATTR_UNKNOWN; break;
        case PONDER_TOKEN_CONTROL: a = TOK_ATTR_CONTROL; break;
        case PONDER_TOKEN_USER_DEFINED: a = TOK_ATTR_USER_DEFINED; break;
        case PONDER_TOKEN_UNUSED: a = TOK_ATTR_UNUSED; break;
        case PONDER_TOKEN_BYTE: a = TOK_ATTR_BYTE; break;
        default: a = TOK_ATTR_UNDEFINED; ty = PONDER_TOKEN_UNDEFINED; break;
        }
        t->attr[i] = a;
        t->kind_of[i] = (uint8_t)ty;
    }
    return PONDER_OK;
}

static ponder_status load_merges(ponder_tokenizer *t, const ponder_gguf *g, ponder_error *err)
{
    const ponder_gguf_array *m;
    ponder_status st = ponder_gguf_get_arr(g, KEY_MERGES, PONDER_GGUF_STRING, &m, err);
    if (st == PONDER_ERR_NOT_FOUND)
        return ponder_error_set(err, st, "tokenizer: %s is missing (required for a gpt2 tokenizer)", KEY_MERGES);
    if (st != PONDER_OK)
        return st;
    if (m->n > (uint64_t)INT32_MAX)
        return ponder_error_set(err, PONDER_ERR_RANGE, "tokenizer: %s has %" PRIu64 " entries", KEY_MERGES, m->n);

    uint64_t total = 0;
    for (uint64_t i = 0; i < m->n; i++) {
        total += ponder_gguf_array_str(m, i).len;
        if (total > SIZE_MAX / 2)
            return ponder_error_set(err, PONDER_ERR_RANGE, "tokenizer: %s is too large", KEY_MERGES);
    }
    t->merge_buf = malloc(total ? (size_t)total : 1);
    if (!t->merge_buf)
        return fail_nomem(err, "the merges");
    if ((st = tok_map_init(&t->merge_map, (size_t)m->n, err)) != PONDER_OK)
        return st;

    size_t off = 0;
    for (uint64_t i = 0; i < m->n; i++) {
        ponder_gguf_str s = ponder_gguf_array_str(m, i);
        /* llama.cpp splits at the first space after the first byte */
        const char *sp = s.len > 1 ? memchr(s.data + 1, ' ', s.len - 1) : NULL;
        if (!sp || (size_t)(sp - s.data) + 1 >= s.len)
            return ponder_error_set(err, PONDER_ERR_FORMAT, "tokenizer: %s[%" PRIu64 "] '%.*s' is not of the form 'a b'",
                                    KEY_MERGES, i, (int)(s.len > 64 ? 64 : s.len), s.data ? s.data : "");
        memcpy(t->merge_buf + off, s.data, s.len);
        /* a repeated merge keeps its first (best) rank, as std::unordered_map::emplace */
        (void)tok_map_insert(&t->merge_map, t->merge_buf + off, s.len, (int32_t)i);
        off += s.len;
    }
    return PONDER_OK;
}

static ponder_status load_special(ponder_tokenizer *t, const ponder_gguf *g, ponder_error *err)
{
    static const struct {
        const char *key;
        size_t field; /* offset of the ponder_token in ponder_tokenizer */
    } KEYS[] = {
        {"tokenizer.ggml.bos_token_id", offsetof(ponder_tokenizer, bos)},
        {"tokenizer.ggml.eos_token_id", offsetof(ponder_tokenizer, eos)},
        {"tokenizer.ggml.eot_token_id", offsetof(ponder_tokenizer, eot)},
        {"tokenizer.ggml.eom_token_id", offsetof(ponder_tokenizer, eom)},
        {"tokenizer.ggml.unknown_token_id", offsetof(ponder_tokenizer, unk)},
        {"tokenizer.ggml.seperator_token_id", offsetof(ponder_tokenizer, sep)}, /* sic, as llama.cpp */
        {"tokenizer.ggml.padding_token_id", offsetof(ponder_tokenizer, pad)},
        {"tokenizer.ggml.fim_pre_token_id", offsetof(ponder_tokenizer, fim_pre)},
        {"tokenizer.ggml.fim_suf_token_id", offsetof(ponder_tokenizer, fim_suf)},
        {"tokenizer.ggml.fim_mid_token_id", offsetof(ponder_tokenizer, fim_mid)},
        {"tokenizer.ggml.fim_pad_token_id", offsetof(ponder_tokenizer, fim_pad)},
        {"tokenizer.ggml.fim_rep_token_id", offsetof(ponder_tokenizer, fim_rep)},
        {"tokenizer.ggml.fim_sep_token_id", offsetof(ponder_tokenizer, fim_sep)},
        {"tokenizer.ggml.prefix_token_id", offsetof(ponder_tokenizer, fim_pre)}, /* deprecated names */
        {"tokenizer.ggml.suffix_token_id", offsetof(ponder_tokenizer, fim_suf)},
        {"tokenizer.ggml.middle_token_id", offsetof(ponder_tokenizer, fim_mid)},
    };
    for (size_t i = 0; i < sizeof KEYS / sizeof KEYS[0]; i++) {
        ponder_token *id = (ponder_token *)((char *)t + KEYS[i].field);
        ponder_status st = get_special_id(g, KEYS[i].key, t->n_vocab, id, err);
        if (st != PONDER_OK)
            return st;
    }
    return PONDER_OK;
}

/* The end-of-generation set and the CONTROL promotions, as llama.cpp's text-based guesses. */
static ponder_status detect_specials(ponder_tokenizer *t, ponder_error *err)
{
    static const char *const EOT[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                                      "<EOT>", "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>",
                                      NULL};
    static const char *const EOM[] = {"<|eom_id|>", NULL};
    static const char *const FIM_PRE[] = {"<|fim_prefix|>", "<fim-prefix>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "begin\xEF\xBD\x9C>",
                                          "<PRE>", NULL};
    static const char *const FIM_SUF[] = {"<|fim_suffix|>", "<fim-suffix>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81hole\xEF\xBD\x9C>",
                                          "<SUF>", NULL};
    static const char *const FIM_MID[] = {"<|fim_middle|>", "<fim-middle>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "end\xEF\xBD\x9C>",
                                          "<MID>", NULL};
    static const char *const FIM_PAD[] = {"<|fim_pad|>", "<fim-pad>", "<PAD>", NULL};
    static const char *const FIM_REP[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", NULL};
    static const char *const FIM_SEP[] = {"<|file_sep|>", NULL};
    static const char *const EOG[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                                      "<|eom_id|>", "<EOT>", NULL};

    detect_special(t, &t->eot, EOT);
    detect_special(t, &t->eom, EOM);
    detect_special(t, &t->fim_pre, FIM_PRE);
    detect_special(t, &t->fim_suf, FIM_SUF);
    detect_special(t, &t->fim_mid, FIM_MID);
    detect_special(t, &t->fim_pad, FIM_PAD);
    detect_special(t, &t->fim_rep, FIM_REP);
    detect_special(t, &t->fim_sep, FIM_SEP);

    ponder_token cand[16];
    int n = 0;
    cand[n++] = t->fim_pad;
    cand[n++] = t->fim_rep;
    cand[n++] = t->fim_sep;
    for (const char *const *s = EOG; *s; s++) {
        ponder_token id = find_text(t, *s);
        if (id >= 0) {
            promote_control(t, id);
            cand[n++] = id;
        }
    }
    cand[n++] = t->eos;
    cand[n++] = t->eot;
    cand[n++] = t->eom;

    t->eog = malloc(sizeof cand);
    if (!t->eog)
        return fail_nomem(err, "the end-of-generation set");
    for (int i = 0; i < n; i++)
        if (cand[i] != PONDER_TOKEN_NULL)
            t->eog[t->n_eog++] = cand[i];
    qsort(t->eog, (size_t)t->n_eog, sizeof *t->eog, cmp_token);
    int k = 0;
    for (int i = 0; i < t->n_eog; i++)
        if (k == 0 || t->eog[k - 1] != t->eog[i])
            t->eog[k++] = t->eog[i];
    t->n_eog = k;
    return PONDER_OK;
}

static bool name_contains(ponder_gguf_str name, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= name.len; i++) {
        size_t k = 0;
        while (k < n && tolower((unsigned char)name.data[i + k]) == needle[k])
            k++;
        if (k == n)
            return true;
    }
    return false;
}

static ponder_status build_special_list(ponder_tokenizer *t, const ponder_gguf *g, ponder_error *err)
{
    int32_t n = 0;
    for (int32_t i = 0; i < t->n_vocab; i++)
        if (t->attr[i] & (TOK_ATTR_CONTROL | TOK_ATTR_USER_DEFINED | TOK_ATTR_UNKNOWN))
            n++;
    /* A text that is not valid UTF-8 could cut a character of the input in two; such
     * tokens (none in real vocabularies) are never matched in text. */
    t->special = malloc((n ? (size_t)n : 1) * sizeof *t->special);
    special_key *keys = malloc((n ? (size_t)n : 1) * sizeof *keys);
    if (!t->special || !keys) {
        free(keys);
        return fail_nomem(err, "the special token list");
    }
    for (int32_t i = 0; i < t->n_vocab; i++) {
        if (t->attr[i] & (TOK_ATTR_CONTROL | TOK_ATTR_USER_DEFINED | TOK_ATTR_UNKNOWN)) {
            size_t len;
            const char *s = tok_text(t, i, &len);
            if (tok_utf8_invalid_at(s, len) != len)
                continue;
            keys[t->n_special].id = i;
            keys[t->n_special].len = len;
            t->n_special++;
        }
    }
    qsort(keys, (size_t)t->n_special, sizeof *keys, cmp_special);
    for (int32_t i = 0; i < t->n_special; i++)
        t->special[i] = keys[i].id;
    free(keys);

    /* llama.cpp's per-model attributes: Phi-3's special tokens swallow the whitespace that
     * follows them (RSTRIP), except <unk>, <s> and <|endoftext|>. */
    ponder_gguf_str name;
    ponder_error tmp;
    if (ponder_gguf_get_str(g, "general.name", &name, &tmp) == PONDER_OK &&
        (name_contains(name, "phi-3") || name_contains(name, "phi3"))) {
        for (int32_t i = 0; i < t->n_special; i++)
            t->attr[t->special[i]] |= TOK_ATTR_RSTRIP;
        ponder_token id = find_text(t, "</s>");
        if (id >= 0)
            t->attr[id] |= TOK_ATTR_RSTRIP;
        static const char *const KEEP[] = {"<unk>", "<s>", "<|endoftext|>"};
        for (size_t i = 0; i < 3; i++)
            if ((id = find_text(t, KEEP[i])) >= 0)
                t->attr[id] &= (uint16_t)~TOK_ATTR_RSTRIP;
    }
    return PONDER_OK;
}

static ponder_status build_spm_pairs(ponder_tokenizer *t, ponder_error *err)
{
    size_t bound = t->text_off[t->n_vocab]; /* more than the number of pairs */
    ponder_status st = tok_map_init(&t->spm_pairs, bound, err);
    if (st != PONDER_OK)
        return st;
    for (ponder_token id = 0; id < t->n_vocab; id++) {
        size_t len;
        const char *s = tok_text(t, id, &len);
        size_t a = 0, la = len ? tok_utf8_len((unsigned char)s[0]) : 0;
        if (la > len)
            la = len;
        while (a + la < len) {
            size_t b = a + la, lb = tok_utf8_len((unsigned char)s[b]);
            if (lb > len - b)
                lb = len - b;
            (void)tok_map_insert(&t->spm_pairs, s + a, la + lb, 0);
            a = b;
            la = lb;
        }
    }
    return PONDER_OK;
}

ponder_status ponder_tokenizer_create(const ponder_gguf *g, ponder_tokenizer **out, ponder_error *err)
{
    ponder_status st;
    ponder_gguf_str model, pre_s;
    bool has_pre;

    if (!out)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "ponder_tokenizer_create: out is NULL");
    *out = NULL;
    if (!g)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "ponder_tokenizer_create: gguf is NULL");

    st = ponder_gguf_get_str(g, KEY_MODEL, &model, err);
    if (st == PONDER_ERR_NOT_FOUND)
        return ponder_error_set(err, st, "tokenizer: %s is missing", KEY_MODEL);
    if (st != PONDER_OK)
        return st;
    st = ponder_gguf_get_str(g, KEY_PRE, &pre_s, err);
    if (st != PONDER_OK && st != PONDER_ERR_NOT_FOUND)
        return st;
    has_pre = st == PONDER_OK;

    ponder_tokenizer *t = calloc(1, sizeof *t);
    if (!t)
        return fail_nomem(err, "the tokenizer");
    t->bos = t->eos = t->eot = t->eom = t->unk = t->pad = t->sep = PONDER_TOKEN_NULL;
    t->fim_pre = t->fim_suf = t->fim_mid = t->fim_pad = t->fim_rep = t->fim_sep = PONDER_TOKEN_NULL;

    if (ponder_gguf_str_eq(model, "llama")) {
        t->kind = PONDER_VOCAB_SPM;
        t->bos = SPM_DEFAULT_BOS;
        t->eos = SPM_DEFAULT_EOS;
        t->unk = SPM_DEFAULT_UNK;
        t->add_space_prefix = true;
        t->add_bos = true;
        t->add_eos = false;
        t->clean_spaces = false;
    } else if (ponder_gguf_str_eq(model, "gpt2")) {
        t->kind = PONDER_VOCAB_BPE;
        if (!has_pre) {
            /* llama.cpp: "missing pre-tokenizer type, using: 'default'" */
            t->pre = tok_pre_find("default", 7);
        } else {
            t->pre = tok_pre_find(pre_s.data, (size_t)pre_s.len);
            if (!t->pre) {
                st = ponder_error_set(err, PONDER_ERR_UNSUPPORTED,
                                      "tokenizer: pre-tokenizer %s = '%.*s' is not supported (supported: %s)",
                                      KEY_PRE, (int)(pre_s.len > 64 ? 64 : pre_s.len), pre_s.data ? pre_s.data : "",
                                      tok_pre_supported());
                goto fail;
            }
        }
        t->bos = tok_pre_no_bos(t->pre) ? PONDER_TOKEN_NULL : BPE_DEFAULT_BOS;
        t->eos = BPE_DEFAULT_EOS;
        t->add_space_prefix = false;
        t->add_bos = tok_pre_add_bos(t->pre) == 1;
        t->add_eos = false;
        t->clean_spaces = tok_pre_clean_spaces(t->pre);
        t->ignore_merges = tok_pre_ignore_merges(t->pre);
    } else {
        st = ponder_error_set(err, PONDER_ERR_UNSUPPORTED,
                              "tokenizer: %s = '%.*s' is not supported (supported: llama, gpt2)", KEY_MODEL,
                              (int)(model.len > 64 ? 64 : model.len), model.data ? model.data : "");
        goto fail;
    }

    if ((st = get_opt_bool(g, "tokenizer.ggml.add_space_prefix", &t->add_space_prefix, err)) != PONDER_OK)
        goto fail;
    /* tokenizer.ggml.remove_extra_whitespaces is read but unused by llama.cpp's SPM path */

    if ((st = load_tokens(t, g, err)) != PONDER_OK)
        goto fail;
    if (t->kind == PONDER_VOCAB_BPE && (st = load_merges(t, g, err)) != PONDER_OK)
        goto fail;

    /* defaults that do not fit a small vocabulary are dropped, as later llama.cpp does */
    ponder_token *defaults[] = {&t->bos, &t->eos, &t->unk};
    for (size_t i = 0; i < 3; i++)
        if (*defaults[i] >= t->n_vocab)
            *defaults[i] = PONDER_TOKEN_NULL;
    if ((st = load_special(t, g, err)) != PONDER_OK)
        goto fail;

    if ((st = get_opt_bool(g, "tokenizer.ggml.add_bos_token", &t->add_bos, err)) != PONDER_OK)
        goto fail;
    if ((st = get_opt_bool(g, "tokenizer.ggml.add_eos_token", &t->add_eos, err)) != PONDER_OK)
        goto fail;
    if (t->add_bos && t->bos == PONDER_TOKEN_NULL) {
        st = ponder_error_set(err, PONDER_ERR_FORMAT, "tokenizer: add_bos_token is true but there is no BOS token");
        goto fail;
    }
    if (t->add_eos && t->eos == PONDER_TOKEN_NULL) {
        st = ponder_error_set(err, PONDER_ERR_FORMAT, "tokenizer: add_eos_token is true but there is no EOS token");
        goto fail;
    }

    if ((st = detect_specials(t, err)) != PONDER_OK)
        goto fail;
    if ((st = build_special_list(t, g, err)) != PONDER_OK)
        goto fail;

    for (int b = 0; b < 256; b++) {
        char hex[8];
        snprintf(hex, sizeof hex, "<0x%02X>", b);
        ponder_token id = find_text(t, hex);
        if (id < 0) {
            char c = (char)b;
            id = tok_lookup(t, &c, 1);
        }
        t->byte_tok[b] = id;
    }

    if (t->kind == PONDER_VOCAB_SPM && (st = build_spm_pairs(t, err)) != PONDER_OK)
        goto fail;
    if ((st = tok_build_pieces(t, err)) != PONDER_OK)
        goto fail;
    if (t->kind == PONDER_VOCAB_BPE && (st = tok_pretok_compile(&t->pretok, t->pre, err)) != PONDER_OK)
        goto fail;

    *out = t;
    return PONDER_OK;
fail:
    ponder_tokenizer_free(t);
    return st;
}

void ponder_tokenizer_free(ponder_tokenizer *t)
{
    if (!t)
        return;
    tok_pretok_free(&t->pretok);
    tok_map_free(&t->token_map);
    tok_map_free(&t->merge_map);
    tok_map_free(&t->spm_pairs);
    free(t->text_buf);
    free(t->text_off);
    free(t->scores);
    free(t->attr);
    free(t->kind_of);
    free(t->merge_buf);
    free(t->special);
    free(t->piece_buf);
    free(t->piece_off);
    free(t->eog);
    free(t);
}

ponder_vocab_kind ponder_tokenizer_kind(const ponder_tokenizer *t) { return t->kind; }

const char *ponder_tokenizer_pre(const ponder_tokenizer *t)
{
    return t->kind == PONDER_VOCAB_BPE ? tok_pre_name(t->pre) : "default";
}

int32_t ponder_tokenizer_n_vocab(const ponder_tokenizer *t) { return t->n_vocab; }
ponder_token ponder_tokenizer_bos(const ponder_tokenizer *t) { return t->bos; }
ponder_token ponder_tokenizer_eos(const ponder_tokenizer *t) { return t->eos; }
ponder_token ponder_tokenizer_eot(const ponder_tokenizer *t) { return t->eot; }
bool ponder_tokenizer_add_bos(const ponder_tokenizer *t) { return t->add_bos; }
bool ponder_tokenizer_add_eos(const ponder_tokenizer *t) { return t->add_eos; }

bool ponder_tokenizer_is_eog(const ponder_tokenizer *t, ponder_token id)
{
    if (id == PONDER_TOKEN_NULL)
        return false;
    return bsearch(&id, t->eog, (size_t)t->n_eog, sizeof *t->eog, cmp_token) != NULL;
}

ponder_token_kind ponder_tokenizer_token_kind(const ponder_tokenizer *t, ponder_token id)
{
    if (id < 0 || id >= t->n_vocab)
        return PONDER_TOKEN_UNDEFINED;
    return (ponder_token_kind)t->kind_of[id];
}

const char *ponder_tokenizer_token_text(const ponder_tokenizer *t, ponder_token id)
{
    if (id < 0 || id >= t->n_vocab)
        return NULL;
    size_t len;
    return tok_text(t, id, &len);
}
