/*
 * pretok.c — BPE pre-tokenizers: the regex chain named by tokenizer.ggml.pre, run with PCRE2.
 *
 * Each row of PRE_TABLE mirrors one llama.cpp pre-tokenizer type (llama-vocab.cpp,
 * llm_tokenizer_bpe, at c392e509): the names that select it, its regex list and its
 * flags. The regexes run one after another; each splits every piece the previous one left.
 * As in llama.cpp's unicode_regex_split, the text between two matches is a piece too.
 *
 * llama.cpp does not run these regexes on the real code points: it uses hand-written
 * splitters for the GPT-2 and LLaMA-3 patterns, and for the others std::regex over a copy
 * of the text in which every non-ASCII code point is replaced by one byte standing for its
 * category (letter, number, punctuation, mark, symbol, other; whitespace becomes \v). We
 * get the same splits from PCRE2 in UTF mode by writing each pattern with the exact sets
 * llama.cpp ends up using:
 *   - \s is Unicode White_Space (llama.cpp's unicode_set_whitespace), spelled out as WS
 *     below rather than trusting PCRE2's \s, whose set depends on the PCRE2 version;
 *   - \p{L}, \p{N}, \p{P}, \p{M} keep their meaning (llama.cpp's category tables and
 *     PCRE2's come from the same Unicode data), but \p{S} must not match '~': the ASCII
 *     part llama.cpp substitutes for \p{S} ("$+<=>^`|") leaves it out;
 *   - in patterns without \p{..} llama.cpp uses std::wregex on the code points after
 *     turning non-ASCII whitespace into \v, so literal ranges such as U+0800..U+4E00 never
 *     match those whitespace characters; the ranges below leave them out.
 * Adding a pre-tokenizer: add a row (names, regexes in this dialect, flags) and a test case.
 */
#include "tokenizer/tok_internal.h"

#include <stdlib.h>
#include <string.h>

/* Unicode White_Space, as a character-class body. */
#define WS "\\t\\n\\x0B\\f\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"
#define SP "[" WS "]"   /* \s */
#define NSP "[^" WS "]" /* \S */

/* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S) — GPT-2. llama.cpp's
 * splitter also ends with |\s+, which changes nothing: such text falls between matches. */
#define RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" WS "\\p{L}\\p{N}]+|" SP "+(?!" NSP ")"

/* LLaMA-3 (and Qwen2 with one digit per piece): (?i:'s|...) spelled case by case, as
 * llama.cpp does. */
#define RE_LLAMA3_HEAD "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
#define RE_LLAMA3_TAIL                                                                                      \
    "| ?[^" WS "\\p{L}\\p{N}]+[\\r\\n]*|" SP "*[\\r\\n]+|" SP "+(?!" NSP ")|" SP "+"
#define RE_LLAMA3 RE_LLAMA3_HEAD "\\p{N}{1,3}" RE_LLAMA3_TAIL
#define RE_QWEN2 RE_LLAMA3_HEAD "\\p{N}" RE_LLAMA3_TAIL

/* U+0800..U+4E00 without the White_Space characters in it (see the file comment). */
#define CJK_WIDE                                                                                            \
    "\\x{800}-\\x{167F}\\x{1681}-\\x{1FFF}\\x{200B}-\\x{2027}\\x{202A}-\\x{202E}\\x{2030}-\\x{205E}"       \
    "\\x{2060}-\\x{2FFF}\\x{3001}-\\x{4E00}"
#define RE_DEEPSEEK_CJK "[\\x{4E00}-\\x{9FA5}" CJK_WIDE "\\x{AC00}-\\x{D7FF}]+"

/* The cased-letter list of deepseek-llm's tokenizer.json. */
#define RE_DEEPSEEK_LETTERS                                                                                 \
    SP "?[A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}\\x{1C4}-\\x{293}"    \
    "\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}\\x{37F}\\x{386}\\x{388}-\\x{38A}"  \
    "\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}\\x{3F7}-\\x{481}\\x{48A}-\\x{52F}\\x{531}-\\x{556}"         \
    "\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}\\x{13F8}-\\x{13FD}\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}"       \
    "\\x{1D00}-\\x{1D2B}\\x{1D6B}-\\x{1D77}\\x{1D79}-\\x{1D9A}\\x{1E00}-\\x{1F15}\\x{1F18}-\\x{1F1D}"       \
    "\\x{1F20}-\\x{1F45}\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{1F59}\\x{1F5B}\\x{1F5D}"                  \
    "\\x{1F5F}-\\x{1F7D}\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}\\x{1FC2}-\\x{1FC4}"                \
    "\\x{1FC6}-\\x{1FCC}\\x{1FD0}-\\x{1FD3}\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{1FEC}\\x{1FF2}-\\x{1FF4}"       \
    "\\x{1FF6}-\\x{1FFC}\\x{2102}\\x{2107}\\x{210A}-\\x{2113}\\x{2115}\\x{2119}-\\x{211D}\\x{2124}"        \
    "\\x{2126}\\x{2128}\\x{212A}-\\x{212D}\\x{212F}-\\x{2134}\\x{2139}\\x{213C}-\\x{213F}"                  \
    "\\x{2145}-\\x{2149}\\x{214E}\\x{2183}\\x{2184}\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}"                  \
    "\\x{2CEB}-\\x{2CEE}\\x{2CF2}\\x{2CF3}\\x{A640}-\\x{A66D}\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}"       \
    "\\x{A771}-\\x{A787}\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}\\x{FB13}-\\x{FB17}"       \
    "\\x{FF21}-\\x{FF3A}\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}\\x{104B0}-\\x{104D3}\\x{104D8}-\\x{104FB}" \
    "\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}\\x{118A0}-\\x{118DF}\\x{1E900}-\\x{1E943}]+"

/* Punctuation of deepseek-llm; U+3000 (a space) is left out, see the file comment. */
#define RE_DEEPSEEK_PUNCT                                                                                   \
    SP "?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3001}-\\x{3002}]+"

/* BLOOM / Poro: " ?[^(\s|.,!?…。，、।۔،)]+" */
#define RE_PORO " ?[^(" WS "|.,!?\\x{2026}\\x{3002}\\x{FF0C}\\x{3001}\\x{964}\\x{6D4}\\x{60C})]+"

/* Mistral Tekken: upper-then-lower letter runs, via lookaheads as llama.cpp adapted them. */
#define RE_TEKKEN                                                                                           \
    "[^\\r\\n\\p{L}\\p{N}]?(?:(?=\\p{L})[^a-z])*(?:(?=\\p{L})[^A-Z])+|"                                    \
    "[^\\r\\n\\p{L}\\p{N}]?(?:(?=\\p{L})[^a-z])+(?:(?=\\p{L})[^A-Z])*|\\p{N}| ?[^" WS                       \
    "\\p{L}\\p{N}]+[\\r\\n/]*|" SP "*[\\r\\n]+|" SP "+(?!" NSP ")|" SP "+"

/* \p{S} as llama.cpp's category collapse sees it: without '~'. */
#define SYM_NO_TILDE "[^\\P{S}~]"
#define RE_DEEPSEEK3                                                                                        \
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|"                                               \
    "(?:~|[^\\r\\n\\p{L}\\p{P}\\p{S}])?[\\p{L}\\p{M}]+|"                                                   \
    " ?(?:\\p{P}|" SYM_NO_TILDE ")+[\\r\\n]*|" SP "*[\\r\\n]+|" SP "+(?!" NSP ")|" SP "+"

#define MAX_REGEX 6
#define MAX_NAMES 5

struct tok_pre_def {
    const char *names[MAX_NAMES];  /* values of tokenizer.ggml.pre; the first is reported */
    const char *regex[MAX_REGEX];  /* applied in order */
    bool ignore_merges;            /* a piece that is a whole token is taken as is */
    bool clean_spaces;             /* llama_detokenize's clean_up_tokenization_spaces */
    int add_bos;                   /* default of add_bos_token: 1, 0, or -1 = vocab default */
    bool no_bos;                   /* no default BOS id (chatglm) */
};

static const tok_pre_def PRE_TABLE[] = {
    {{"default"},
     {"[\\p{P}\\$\\+<=>\\^~\\|]+", RE_GPT2, "\\p{N}+", "[0-9][0-9][0-9]"}, false, true, -1, false},
    {{"llama3", "llama-v3", "llama-bpe", "falcon3"}, {RE_LLAMA3}, true, true, 1, false},
    {{"dbrx", "smaug-bpe"}, {RE_LLAMA3}, false, true, -1, false},
    {{"deepseek-llm"},
     {"[\\r\\n]", RE_DEEPSEEK_LETTERS, RE_DEEPSEEK_PUNCT, SP "+$", RE_DEEPSEEK_CJK, "\\p{N}+"},
     false, false, -1, false},
    {{"deepseek-coder"},
     {"[\\r\\n]", SP "?\\p{L}+", SP "?\\p{P}+", RE_DEEPSEEK_CJK, "\\p{N}"}, false, false, -1, false},
    {{"deepseek-v3"},
     {"\\p{N}{1,3}", "[\\x{4E00}-\\x{9FA5}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}]+", RE_DEEPSEEK3},
     false, false, -1, false},
    {{"falcon"}, {"[\\p{P}\\$\\+<=>\\^~\\|`]+", RE_GPT2, "[0-9][0-9][0-9]"}, false, true, -1, false},
    {{"starcoder"}, {"\\p{N}", RE_GPT2}, false, true, -1, false},
    {{"refact"}, {"\\p{N}", RE_GPT2}, false, true, -1, false},
    {{"command-r"}, {"\\p{N}", RE_GPT2}, false, false, -1, false},
    {{"smollm"}, {"\\p{N}", RE_GPT2}, false, false, -1, false},
    {{"codeshell"}, {"\\p{N}", RE_GPT2}, false, true, -1, false},
    {{"exaone"}, {"\\p{N}", RE_GPT2}, false, true, -1, false},
    {{"minerva-7b"}, {"\\p{N}", RE_GPT2}, false, true, -1, false},
    {{"gpt-2", "phi-2", "gigachat"}, {RE_GPT2}, false, true, -1, false},
    {{"mpt"}, {RE_GPT2}, false, true, -1, false},
    {{"olmo"}, {RE_GPT2}, false, true, -1, false},
    {{"jais"}, {RE_GPT2}, false, true, -1, false},
    {{"qwen2", "deepseek-r1-qwen"}, {RE_QWEN2}, false, false, -1, false},
    {{"megrez"}, {RE_QWEN2}, false, true, -1, false},
    {{"stablelm2"}, {RE_QWEN2}, false, true, -1, false},
    {{"chatglm-bpe"}, {RE_LLAMA3}, false, true, -1, true},
    {{"poro-chat"}, {RE_PORO}, false, false, -1, false},
    {{"bloom", "gpt3-finnish"}, {RE_PORO}, false, true, -1, false},
    {{"viking"}, {RE_PORO, "\\p{N}"}, false, false, -1, false},
    {{"tekken"}, {RE_TEKKEN}, true, false, 1, false},
    {{"chameleon"},
     {"<sentinel:[0-9]+>", "(?:IMGIMG)(?:(?:A|B|C|D|E|F|G|H|I){1,4})Z", "(?:[\\t\\n]|    |  )", "\\p{N}",
      "[\\p{P}!-/:-@\\[-`{-~]", RE_GPT2},
     false, false, 1, false},
};

#define N_PRE (sizeof PRE_TABLE / sizeof PRE_TABLE[0])

const tok_pre_def *tok_pre_find(const char *name, size_t len)
{
    for (size_t i = 0; i < N_PRE; i++)
        for (int k = 0; k < MAX_NAMES && PRE_TABLE[i].names[k]; k++)
            if (strlen(PRE_TABLE[i].names[k]) == len && memcmp(PRE_TABLE[i].names[k], name, len) == 0)
                return &PRE_TABLE[i];
    return NULL;
}

const char *tok_pre_supported(void)
{
    return "default, llama3, llama-v3, llama-bpe, falcon3, dbrx, smaug-bpe, deepseek-llm, deepseek-coder, "
           "deepseek-v3, falcon, starcoder, refact, command-r, smollm, codeshell, exaone, minerva-7b, "
           "gpt-2, phi-2, gigachat, mpt, olmo, jais, qwen2, deepseek-r1-qwen, megrez, stablelm2, "
           "chatglm-bpe, poro-chat, bloom, gpt3-finnish, viking, tekken, chameleon";
}

const char *tok_pre_name(const tok_pre_def *d) { return d->names[0]; }
bool tok_pre_ignore_merges(const tok_pre_def *d) { return d->ignore_merges; }
bool tok_pre_clean_spaces(const tok_pre_def *d) { return d->clean_spaces; }
int tok_pre_add_bos(const tok_pre_def *d) { return d->add_bos; }
bool tok_pre_no_bos(const tok_pre_def *d) { return d->no_bos; }

ponder_status tok_pretok_compile(tok_pretok *p, const tok_pre_def *def, ponder_error *err)
{
    memset(p, 0, sizeof *p);
    p->def = def;
    for (int i = 0; i < MAX_REGEX && def->regex[i]; i++) {
        int errcode;
        PCRE2_SIZE erroff;
        /* DOLLAR_ENDONLY: std::regex's $ matches only at the end, never before a final \n */
        pcre2_code *code = pcre2_compile((PCRE2_SPTR)def->regex[i], PCRE2_ZERO_TERMINATED,
                                         PCRE2_UTF | PCRE2_DOLLAR_ENDONLY, &errcode, &erroff, NULL);
        if (!code) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(errcode, msg, sizeof msg);
            tok_pretok_free(p);
            return ponder_error_set(err, PONDER_ERR_INTERNAL,
                                    "tokenizer: pre-tokenizer '%s' regex %d does not compile at offset %zu: %s",
                                    def->names[0], i, (size_t)erroff, (const char *)msg);
        }
        /* JIT only speeds matching up; without it (unsupported CPU) the interpreter runs */
        (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
        p->code[p->n_regex++] = code;
    }
    return PONDER_OK;
}

void tok_pretok_free(tok_pretok *p)
{
    for (int i = 0; i < p->n_regex; i++)
        pcre2_code_free(p->code[i]);
    p->n_regex = 0;
}

static ponder_status spans_push(tok_spans *s, size_t off, size_t len, ponder_error *err)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        if (cap > SIZE_MAX / sizeof *s->v)
            return ponder_error_set(err, PONDER_ERR_RANGE, "tokenizer: too many pre-tokenizer pieces");
        tok_span *v = realloc(s->v, cap * sizeof *v);
        if (!v)
            return ponder_error_set(err, PONDER_ERR_NOMEM, "tokenizer: out of memory for %zu pieces", cap);
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n].off = off;
    s->v[s->n].len = len;
    s->n++;
    return PONDER_OK;
}

ponder_status tok_pretok_split(const tok_pretok *p, const char *text, size_t len, tok_spans *out,
                               ponder_error *err)
{
    ponder_status st = PONDER_OK;
    tok_spans cur = {0}, next = {0};
    pcre2_match_data *md = NULL;

    out->n = 0;
    if (len == 0)
        return PONDER_OK;
    if ((st = spans_push(&cur, 0, len, err)) != PONDER_OK)
        goto done;

    md = pcre2_match_data_create(1, NULL);
    if (!md) {
        st = ponder_error_set(err, PONDER_ERR_NOMEM, "tokenizer: out of memory for regex match data");
        goto done;
    }

    for (int r = 0; r < p->n_regex; r++) {
        next.n = 0;
        for (size_t k = 0; k < cur.n; k++) {
            const char *subj = text + cur.v[k].off;
            size_t n = cur.v[k].len, pos = 0, prev_end = 0;
            while (pos < n) {
                int rc = pcre2_match(p->code[r], (PCRE2_SPTR)subj, n, pos, PCRE2_NO_UTF_CHECK, md, NULL);
                if (rc == PCRE2_ERROR_NOMATCH)
                    break;
                if (rc < 0) {
                    PCRE2_UCHAR msg[256];
                    pcre2_get_error_message(rc, msg, sizeof msg);
                    st = ponder_error_set(err, PONDER_ERR_INTERNAL,
                                          "tokenizer: pre-tokenizer '%s' regex %d failed at byte %zu: %s",
                                          p->def->names[0], r, cur.v[k].off + pos, (const char *)msg);
                    goto done;
                }
                PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
                size_t ms = ov[0], me = ov[1];
                if (me == ms) {
                    /* none of our patterns matches empty; step over one character if one did */
                    pos = ms + tok_utf8_len((unsigned char)subj[ms]);
                    continue;
                }
                if (ms > prev_end && (st = spans_push(&next, cur.v[k].off + prev_end, ms - prev_end, err)))
                    goto done;
                if ((st = spans_push(&next, cur.v[k].off + ms, me - ms, err)) != PONDER_OK)
                    goto done;
                prev_end = pos = me;
            }
            if (prev_end < n && (st = spans_push(&next, cur.v[k].off + prev_end, n - prev_end, err)))
                goto done;
        }
        tok_spans tmp = cur;
        cur = next;
        next = tmp;
    }

    free(out->v);
    *out = cur;
    cur.v = NULL;
done:
    pcre2_match_data_free(md);
    free(cur.v);
    free(next.v);
    return st;
}
