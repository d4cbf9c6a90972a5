/*
 * tokenizer_fuzz.c — libFuzzer harness for the tokenizer. Three real vocabularies are
 * loaded once: stories260K (SPM with byte fallback and a space prefix), GPT-2 (byte-level
 * BPE whose decode applies llama.cpp's clean_up_tokenization_spaces) and SmolLM2 (BPE with
 * ChatML control tokens, no clean-up). The first input byte picks vocabulary and flags:
 *
 *   bits 0-1  vocabulary (value % 3)       bit 2  add_special
 *   bit 3     parse_special                bit 4  render special tokens in decode/stream
 *   bit 5     id mode: the rest is little-endian u16 ids, mapped into [-4, n_vocab + 4)
 *   bit 6     remove_leading_space in decode
 *
 * Text mode encodes the rest and checks the promises of tokenizer.h against facts the
 * harness works out on its own: invalid UTF-8 (judged by a validator written here) is
 * PONDER_ERR_INVALID_ARG naming the byte offset; valid text encodes, add_special only adds
 * BOS/EOS around the same ids, and the pieces give the text back exactly, except that
 * SPM reads U+2581 as a space and puts one space before the first text fragment and after
 * each special token cut out of the text; decode equals the pieces joined (first piece's
 * space stripped on request, GPT-2 clean-up applied); the streaming detokenizer hands out
 * the same bytes, never ending a chunk inside a character that could still be completed.
 * Id mode feeds arbitrary (also invalid) ids to decode and the streaming detokenizer.
 * A broken promise traps so the fuzzer records it. Also compiled into the corpus replay
 * test (tests/tokenizer/test_tokenizer_corpus.c).
 */
#include "ponder/gguf.h"
#include "ponder/tokenizer.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                       \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "tokenizer_fuzz.c:%d: check failed: %s\n", __LINE__, #cond); \
            __builtin_trap();                                                             \
        }                                                                                 \
    } while (0)

/* What the harness knows about each vocabulary from llama.cpp's loader, not from ponder:
 * "llama" models default to add_space_prefix; BPE clean_spaces is on except for the
 * pre-tokenizers llama.cpp lists as off (smollm among them). */
typedef struct fuzz_vocab {
    const char *rel; /* under the shared folder */
    ponder_vocab_kind kind;
    bool space_prefix;
    bool clean_spaces;
    ponder_tokenizer *tok;
    /* BPE: byte b survives encoding, i.e. its byte-level symbol is a token. llama.cpp
     * drops a symbol with no token (SmolLM2 has none for some control bytes, e.g. 0x04).
     * SPM: all true (byte fallback; LLVMFuzzerInitialize checks the 256 byte tokens). */
    bool keeps[256];
} fuzz_vocab;

static fuzz_vocab g_vocab[] = {
    {"models/stories260K/stories260K.gguf", PONDER_VOCAB_SPM, true, false, NULL, {0}},
    {"reference/tokenizer/ggml-vocab-gpt-2.gguf", PONDER_VOCAB_BPE, false, true, NULL, {0}},
    {"models/synthetic/syn-tiny-smollm-Q4_K_M.gguf", PONDER_VOCAB_BPE, false, false, NULL, {0}},
};
#define N_VOCAB (sizeof g_vocab / sizeof g_vocab[0])

enum {
    CTL_ADD_SPECIAL = 1 << 2,
    CTL_PARSE_SPECIAL = 1 << 3,
    CTL_RENDER_SPECIAL = 1 << 4,
    CTL_ID_MODE = 1 << 5,
    CTL_REMOVE_SPACE = 1 << 6,
};

/* ---- a growable byte buffer (the harness may abort on OOM) ---- */

typedef struct bytes {
    char *p;
    size_t n, cap;
} bytes;

static void bytes_add(bytes *b, const void *src, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 1)
            cap *= 2;
        b->p = realloc(b->p, cap);
        CHECK(b->p != NULL);
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->n, src, n);
    b->n += n;
    b->p[b->n] = '\0';
}

/* ---- UTF-8, written independently of src/tokenizer/util.c ---- */

/* Offset of the lead byte of the first ill-formed sequence (RFC 3629: shortest form only,
 * no surrogates, nothing above U+10FFFF), or n when all of s is well formed. Decodes the
 * code point first and judges its value, where the library checks byte ranges. */
static size_t utf8_first_invalid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint32_t c = s[i];
        size_t more;
        uint32_t min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            more = 1, c &= 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            more = 2, c &= 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            more = 3, c &= 0x07, min = 0x10000;
        } else {
            return i;
        }
        if (n - i - 1 < more)
            return i;
        for (size_t k = 1; k <= more; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return i;
            c = c << 6 | (s[i + k] & 0x3Fu);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
            return i;
        i += more + 1;
    }
    return n;
}

/* True if s[0..n) is a proper prefix of one well-formed multi-byte character, i.e. more
 * bytes could still make it a character. Found by trying completions. */
static bool utf8_completable(const uint8_t *s, size_t n)
{
    if (n == 0 || n > 3)
        return false;
    uint8_t b[4];
    for (size_t total = n + 1; total <= 4; total++) {
        for (unsigned second = 0x80; second <= 0xBF; second++) {
            memcpy(b, s, n);
            for (size_t k = n; k < total; k++)
                b[k] = 0x80;
            if (n == 1)
                b[1] = (uint8_t)second;
            else if (second > 0x80)
                break; /* the second byte is given; only one completion to try */
            /* well formed, and one character: no shorter prefix is well formed */
            bool one_char = utf8_first_invalid(b, total) == total;
            for (size_t m = 1; one_char && m < total; m++)
                one_char = utf8_first_invalid(b, m) != m;
            if (one_char)
                return true;
        }
    }
    return false;
}

/* ---- helpers over the public API ---- */

/* Appends the piece of id to out and returns its length; checks token_to_piece's size
 * protocol (negated size when the buffer is short, same bytes on every call). */
static size_t add_piece(const ponder_tokenizer *tok, ponder_token id, bool special, bytes *out)
{
    char tiny[1];
    int32_t need = ponder_tokenizer_token_to_piece(tok, id, tiny, 0, special);
    CHECK(need <= 0);
    size_t len = (size_t)-(int64_t)need;
    if (len == 0)
        return 0;
    char *p = malloc(len);
    CHECK(p != NULL);
    CHECK(ponder_tokenizer_token_to_piece(tok, id, p, (int32_t)len - 1, special) == need);
    CHECK(ponder_tokenizer_token_to_piece(tok, id, p, (int32_t)len, special) == (int32_t)len);
    bytes_add(out, p, len);
    free(p);
    return len;
}

static bytes pieces_of(const ponder_tokenizer *tok, const ponder_token *ids, size_t n, bool special)
{
    bytes b = {0};
    bytes_add(&b, "", 0);
    for (size_t i = 0; i < n; i++)
        add_piece(tok, ids[i], special, &b);
    return b;
}

/* A special token that encode cut out of the text (rather than one the SPM/BPE merges
 * happened to reach): user-defined ones always, control and unknown ones with
 * parse_special. After the cuts no text fragment contains such a token's text, so the
 * merges cannot produce it. */
static bool is_cut_special(const ponder_tokenizer *tok, ponder_token id, bool parse_special)
{
    ponder_token_kind k = ponder_tokenizer_token_kind(tok, id);
    return k == PONDER_TOKEN_USER_DEFINED ||
           (parse_special && (k == PONDER_TOKEN_CONTROL || k == PONDER_TOKEN_UNKNOWN));
}

/* llama.cpp's clean_up_tokenization_spaces as three string replacements, left to right
 * without overlap: " ?", " !", " .", " ," drop the space; " ' " becomes "'"; " 's",
 * " 'm", " 're", " 've" drop the space. */
static bytes clean_spaces(const char *s, size_t n)
{
    bytes a = {0}, b = {0}, c = {0};
    bytes_add(&a, "", 0);
    bytes_add(&b, "", 0);
    bytes_add(&c, "", 0);
    for (size_t i = 0; i < n; i++)
        if (!(s[i] == ' ' && i + 1 < n && strchr("?!.,", s[i + 1]) && s[i + 1] != '\0'))
            bytes_add(&a, s + i, 1);
    for (size_t i = 0; i < a.n;) {
        if (i + 2 < a.n && memcmp(a.p + i, " ' ", 3) == 0) {
            bytes_add(&b, "'", 1);
            i += 3;
        } else {
            bytes_add(&b, a.p + i, 1);
            i++;
        }
    }
    for (size_t i = 0; i < b.n; i++) {
        const char *r = b.p + i + 1;
        size_t left = b.n - i - 1;
        bool drop = b.p[i] == ' ' && left >= 2 && r[0] == '\'' &&
                    (r[1] == 's' || r[1] == 'm' ||
                     (left >= 3 && (memcmp(r + 1, "re", 2) == 0 || memcmp(r + 1, "ve", 2) == 0)));
        if (!drop)
            bytes_add(&c, b.p + i, 1);
    }
    free(a.p);
    free(b.p);
    return c;
}

/* decode's result is a C string: compare up to the first NUL the expected text has */
static void check_cstr(const char *got, const char *exp, size_t exp_len)
{
    const char *nul = memchr(exp, '\0', exp_len);
    size_t n = nul ? (size_t)(nul - exp) : exp_len;
    CHECK(strlen(got) == n);
    CHECK(memcmp(got, exp, n) == 0);
}

/* What decode must return: the pieces joined, the first piece without its leading space
 * when asked (SPM with a space prefix only), then GPT-2's clean-up. */
static bytes expected_decode(const fuzz_vocab *v, const ponder_token *ids, size_t n, bool special, bool rls)
{
    bytes b = {0};
    bytes_add(&b, "", 0);
    for (size_t i = 0; i < n; i++) {
        size_t at = b.n;
        size_t len = add_piece(v->tok, ids[i], special, &b);
        if (i == 0 && rls && v->space_prefix && len > 0 && b.p[at] == ' ') {
            memmove(b.p + at, b.p + at + 1, len); /* moves the NUL too */
            b.n--;
        }
    }
    if (!v->clean_spaces)
        return b;
    bytes c = clean_spaces(b.p, b.n);
    free(b.p);
    return c;
}

static void check_decode(const fuzz_vocab *v, const ponder_token *ids, size_t n, bool special, bool rls)
{
    char *got = NULL;
    ponder_error err = {0};
    CHECK(ponder_tokenizer_decode(v->tok, ids, n, special, rls, &got, &err) == PONDER_OK);
    CHECK(got != NULL);
    bytes exp = expected_decode(v, ids, n, special, rls);
    check_cstr(got, exp.p, exp.n);
    free(exp.p);
    free(got);
}

/* Streams ids through a detokenizer: the chunks and the flush together are the pieces
 * joined; exactly the incomplete character at the end of what was fed is held back; when
 * all_valid (the joined pieces are well formed) every chunk is well formed and nothing is
 * left for the flush. */
static void check_stream(const fuzz_vocab *v, const ponder_token *ids, size_t n, bool special)
{
    ponder_detokenizer *d = NULL;
    ponder_error err = {0};
    CHECK(ponder_detokenizer_create(v->tok, special, &d, &err) == PONDER_OK && d != NULL);
    bytes want = pieces_of(v->tok, ids, n, special);
    bool all_valid = utf8_first_invalid((const uint8_t *)want.p, want.n) == want.n;
    bytes got = {0};
    bytes_add(&got, "", 0);
    size_t fed = 0; /* bytes of the pieces pushed so far */
    for (size_t i = 0; i < n; i++) {
        char tiny[1];
        fed += (size_t)-(int64_t)ponder_tokenizer_token_to_piece(v->tok, ids[i], tiny, 0, special);
        const char *text = NULL;
        size_t len = 0;
        ponder_detokenizer_push(d, ids[i], &text, &len);
        CHECK(len == 0 || text != NULL);
        const uint8_t *u = (const uint8_t *)text;
        if (all_valid)
            CHECK(utf8_first_invalid(u, len) == len);
        bytes_add(&got, text, len);
        /* What came out is a prefix of what went in; what is held back, want[got.n, fed),
         * is the start of a character more bytes could complete, and holding back less
         * would have split such a start. */
        CHECK(got.n <= fed && memcmp(got.p, want.p, got.n) == 0);
        const uint8_t *w = (const uint8_t *)want.p;
        CHECK(fed == got.n || utf8_completable(w + got.n, fed - got.n));
        for (size_t k = fed > 3 ? fed - 3 : 0; k < got.n; k++)
            CHECK(!utf8_completable(w + k, fed - k));
    }
    const char *text = NULL;
    size_t len = 0;
    ponder_detokenizer_flush(d, &text, &len);
    CHECK(len <= 3);
    CHECK(len == 0 || utf8_completable((const uint8_t *)text, len));
    if (all_valid)
        CHECK(len == 0);
    bytes_add(&got, text, len);
    CHECK(got.n == want.n && memcmp(got.p, want.p, want.n) == 0);
    /* after a flush the detokenizer starts afresh */
    ponder_detokenizer_flush(d, &text, &len);
    CHECK(len == 0);
    ponder_detokenizer_free(d);
    free(got.p);
    free(want.p);
}

/* ---- text mode ---- */

static ponder_token *encode_ok(const fuzz_vocab *v, const char *text, size_t len, bool add_special, bool parse_special,
                               size_t *n)
{
    ponder_token *ids = NULL;
    ponder_error err = {0};
    ponder_status st = ponder_tokenizer_encode(v->tok, text, len, add_special, parse_special, &ids, n, &err);
    if (st != PONDER_OK)
        fprintf(stderr, "tokenizer_fuzz: encode failed: %s\n", err.msg);
    CHECK(st == PONDER_OK);
    CHECK(*n == 0 || ids != NULL);
    int32_t n_vocab = ponder_tokenizer_n_vocab(v->tok);
    for (size_t i = 0; i < *n; i++)
        CHECK(ids[i] >= 0 && ids[i] < n_vocab);
    return ids;
}

/* The text as the pieces give it back: SPM reads U+2581 as a space; BPE loses the bytes
 * the vocabulary has no symbol for. With drop == NULL those bytes are removed, else they
 * are kept and flagged in drop[] (one flag per byte of the result). */
static bytes text_as_pieces(const fuzz_vocab *v, const char *text, size_t len, bytes *drop)
{
    bytes b = {0};
    bytes_add(&b, "", 0);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        char gone = !v->keeps[c];
        if (v->kind == PONDER_VOCAB_SPM && i + 3 <= len && memcmp(text + i, "\xE2\x96\x81", 3) == 0) {
            bytes_add(&b, " ", 1);
            if (drop)
                bytes_add(drop, "", 1);
            i += 2;
        } else if (drop) {
            bytes_add(&b, text + i, 1);
            bytes_add(drop, &gone, 1);
        } else if (!gone) {
            bytes_add(&b, text + i, 1);
        }
    }
    return b;
}

/* The pieces (control tokens rendered) give the text back (as text_as_pieces sees it),
 * with one space more before the first text fragment and after each special token cut
 * out of the text for SPM (tokenizer.h, "SPM vocabularies with add_space_prefix"). */
static void check_pieces(const fuzz_vocab *v, const char *text, size_t len, const ponder_token *ids, size_t n,
                         bool parse_special)
{
    bytes drop = {0};
    bytes want = text_as_pieces(v, text, len, &drop);
    bytes piece = {0};
    size_t at = 0;
    bool need_space = v->space_prefix;
    for (size_t i = 0; i < n; i++) {
        piece.n = 0;
        add_piece(v->tok, ids[i], true, &piece);
        const char *p = piece.p;
        size_t pn = piece.n;
        bool cut = is_cut_special(v->tok, ids[i], parse_special);
        if (cut) {
            need_space = v->space_prefix;
        } else if (need_space) {
            CHECK(pn > 0 && p[0] == ' ');
            p++, pn--;
            need_space = false;
        }
        /* Match greedily, skipping a droppable byte only where it differs from the piece:
         * droppability is per byte value, so taking an equal byte is never wrong (a merge
         * may still carry a byte whose symbol alone is no token). */
        for (size_t k = 0; k < pn; k++) {
            while (at < want.n && drop.p[at] && want.p[at] != p[k])
                at++;
            CHECK(at < want.n && want.p[at] == p[k]);
            at++;
        }
    }
    while (at < want.n && drop.p[at])
        at++;
    CHECK(at == want.n);
    free(piece.p);
    free(want.p);
    free(drop.p);
}

static void check_text(const fuzz_vocab *v, const char *text, size_t len, uint8_t ctl)
{
    bool add_special = ctl & CTL_ADD_SPECIAL, parse_special = ctl & CTL_PARSE_SPECIAL;
    bool render = ctl & CTL_RENDER_SPECIAL, rls = ctl & CTL_REMOVE_SPACE;
    const ponder_tokenizer *tok = v->tok;

    size_t bad = utf8_first_invalid((const uint8_t *)text, len);
    if (bad < len) {
        static ponder_token sentinel[1];
        ponder_token *ids = sentinel; /* encode must reset it to NULL */
        size_t n = 12345;
        ponder_error err = {0};
        ponder_status st = ponder_tokenizer_encode(tok, text, len, add_special, parse_special, &ids, &n, &err);
        CHECK(st == PONDER_ERR_INVALID_ARG && err.code == st);
        CHECK(ids == NULL && n == 0);
        char where[48];
        snprintf(where, sizeof where, "byte %zu", bad);
        CHECK(strstr(err.msg, where) != NULL);
        return;
    }

    size_t n_plain, n_full;
    ponder_token *plain = encode_ok(v, text, len, false, parse_special, &n_plain);
    ponder_token *full = encode_ok(v, text, len, true, parse_special, &n_full);
    CHECK(len > 0 || n_plain == 0);

    /* add_special adds BOS/EOS as the vocabulary asks and changes nothing else */
    size_t lead = ponder_tokenizer_add_bos(tok) ? 1 : 0, tail = ponder_tokenizer_add_eos(tok) ? 1 : 0;
    CHECK(n_full == lead + n_plain + tail);
    if (lead)
        CHECK(full[0] == ponder_tokenizer_bos(tok));
    if (tail)
        CHECK(full[n_full - 1] == ponder_tokenizer_eos(tok));
    CHECK(n_plain == 0 || memcmp(full + lead, plain, n_plain * sizeof *plain) == 0);

    check_pieces(v, text, len, plain, n_plain, parse_special);

    /* The header's round trip, end to end, when the ids hold no special token and the text
     * no byte that may be dropped (those need the walk in check_pieces): SPM gives the text
     * back with U+2581 as a space and the leading space removed, or kept after a BOS that
     * renders as nothing; BPE gives the text back (cleaned up for GPT-2). */
    bool needs_walk = false;
    for (size_t i = 0; i < len; i++)
        needs_walk |= !v->keeps[(unsigned char)text[i]]; /* may or may not come back */
    for (size_t i = 0; i < n_plain; i++) {
        ponder_token_kind k = ponder_tokenizer_token_kind(tok, plain[i]);
        needs_walk |= k == PONDER_TOKEN_CONTROL || k == PONDER_TOKEN_UNKNOWN || k == PONDER_TOKEN_USER_DEFINED;
    }
    if (!needs_walk) {
        bytes want = text_as_pieces(v, text, len, NULL);
        if (v->clean_spaces) {
            bytes c = clean_spaces(want.p, want.n);
            free(want.p);
            want = c;
        }
        char *got = NULL;
        CHECK(ponder_tokenizer_decode(tok, plain, n_plain, false, true, &got, NULL) == PONDER_OK);
        check_cstr(got, want.p, want.n);
        free(got);
        if (v->kind == PONDER_VOCAB_SPM && lead && len > 0) {
            CHECK(ponder_tokenizer_decode(tok, full, n_full, false, true, &got, NULL) == PONDER_OK);
            CHECK(got[0] == ' ');
            check_cstr(got + 1, want.p, want.n);
            free(got);
        }
        free(want.p);
    }

    const ponder_token *ids = add_special ? full : plain;
    size_t n = add_special ? n_full : n_plain;
    check_decode(v, ids, n, render, rls);
    check_stream(v, ids, n, render);
    free(plain);
    free(full);
}

/* ---- id mode ---- */

static void check_ids(const fuzz_vocab *v, const uint8_t *data, size_t size, uint8_t ctl)
{
    bool render = ctl & CTL_RENDER_SPECIAL, rls = ctl & CTL_REMOVE_SPACE;
    int32_t n_vocab = ponder_tokenizer_n_vocab(v->tok);
    size_t n = size / 2;
    ponder_token *ids = malloc((n ? n : 1) * sizeof *ids);
    CHECK(ids != NULL);
    bool all_in = true;
    for (size_t i = 0; i < n; i++) {
        unsigned raw = data[2 * i] | (unsigned)data[2 * i + 1] << 8;
        ids[i] = (ponder_token)(raw % (unsigned)(n_vocab + 8)) - 4;
        all_in &= ids[i] >= 0 && ids[i] < n_vocab;
    }
    if (all_in) {
        check_decode(v, ids, n, render, rls);
    } else {
        static char sentinel[1];
        char *got = sentinel; /* decode must reset it to NULL */
        ponder_error err = {0};
        CHECK(ponder_tokenizer_decode(v->tok, ids, n, render, rls, &got, &err) == PONDER_ERR_INVALID_ARG);
        CHECK(got == NULL && err.code == PONDER_ERR_INVALID_ARG && err.msg[0] != '\0');
    }
    /* token_to_piece renders out-of-range ids as nothing; so does the stream */
    check_stream(v, ids, n, render);
    free(ids);
}

/* ---- libFuzzer entry points ---- */

static void free_vocabs(void)
{
    for (size_t i = 0; i < N_VOCAB; i++) {
        ponder_tokenizer_free(g_vocab[i].tok);
        g_vocab[i].tok = NULL;
    }
}

/* The shared folder as the tests find it: $PONDER_SHARED, else $PONDER_SHARED_DEFAULT (set
 * by CTest), else the path baked in at build time, else ../shared. */
static const char *shared_root(void)
{
    const char *root = getenv("PONDER_SHARED");
    if (!root || !*root)
        root = getenv("PONDER_SHARED_DEFAULT");
#ifdef PONDER_FUZZ_SHARED_DEFAULT
    if (!root || !*root)
        root = PONDER_FUZZ_SHARED_DEFAULT;
#endif
    if (!root || !*root)
        root = "../shared";
    return root;
}

/* Fills v->keeps from the token texts. */
static void learn_bytes(fuzz_vocab *v)
{
    int32_t n_vocab = ponder_tokenizer_n_vocab(v->tok);
    if (v->kind == PONDER_VOCAB_SPM) {
        /* byte fallback needs every one of <0x00>..<0xFF> */
        for (ponder_token id = 0; id < n_vocab; id++) {
            const char *t = ponder_tokenizer_token_text(v->tok, id);
            unsigned b;
            char end;
            if (ponder_tokenizer_token_kind(v->tok, id) == PONDER_TOKEN_BYTE && strlen(t) == 6 &&
                sscanf(t, "<0x%2x%c", &b, &end) == 2 && end == '>')
                v->keeps[b] = true;
        }
        for (unsigned b = 0; b < 256; b++)
            CHECK(v->keeps[b]);
        return;
    }
    /* GPT-2's bytes_to_unicode(): printable bytes keep their code point, the others get
     * U+0100, U+0101, ... in byte order */
    uint32_t cpt[256];
    uint32_t next = 0x100;
    for (unsigned b = 0; b < 256; b++) {
        bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        cpt[b] = printable ? b : next++;
    }
    for (ponder_token id = 0; id < n_vocab; id++) {
        const unsigned char *t = (const unsigned char *)ponder_tokenizer_token_text(v->tok, id);
        size_t len = strlen((const char *)t);
        uint32_t c;
        if (len == 1 && t[0] < 0x80)
            c = t[0];
        else if (len == 2 && (t[0] & 0xE0) == 0xC0 && (t[1] & 0xC0) == 0x80)
            c = (uint32_t)(t[0] & 0x1F) << 6 | (t[1] & 0x3Fu);
        else
            continue;
        for (unsigned b = 0; b < 256; b++)
            if (cpt[b] == c)
                v->keeps[b] = true;
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (g_vocab[0].tok)
        return 0;
    for (size_t i = 0; i < N_VOCAB; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", shared_root(), g_vocab[i].rel);
        ponder_gguf *g = NULL;
        ponder_error err = {0};
        if (ponder_gguf_open(path, &g, &err) != PONDER_OK ||
            ponder_tokenizer_create(g, &g_vocab[i].tok, &err) != PONDER_OK) {
            fprintf(stderr, "tokenizer_fuzz: cannot load %s: %s (set PONDER_SHARED)\n", path, err.msg);
            exit(1);
        }
        ponder_gguf_free(g);
        /* the table above must describe the file, or every check would be off */
        CHECK(ponder_tokenizer_kind(g_vocab[i].tok) == g_vocab[i].kind);
        learn_bytes(&g_vocab[i]);
    }
    atexit(free_vocabs);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint8_t ctl = data[0];
    const fuzz_vocab *v = &g_vocab[(ctl & 3) % N_VOCAB];
    CHECK(v->tok != NULL); /* LLVMFuzzerInitialize ran */
    if (ctl & CTL_ID_MODE)
        check_ids(v, data + 1, size - 1, ctl);
    else
        check_text(v, (const char *)data + 1, size - 1, ctl);
    return 0;
}
