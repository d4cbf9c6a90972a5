/*
 * test_tokenizer_api.c — the tokenizer API beyond the reference cases: special-token parsing
 * on and off, BOS/EOS, end-of-generation ids, round trips, llama.cpp's space clean-up in
 * decode, the streaming detokenizer on emoji split over byte tokens, invalid UTF-8, and one
 * small GGUF (written with ponder_gguf_writer) per bad-metadata failure mode.
 */
#include "ponder/gguf.h"
#include "ponder/tokenizer.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define STORIES "models/stories260K/stories260K.gguf"
#define SMOLLM "models/synthetic/syn-tiny-smollm-Q4_K_M.gguf"
#define GPT2 "reference/tokenizer/ggml-vocab-gpt-2.gguf"

static ponder_tokenizer *load(const char *rel)
{
    ponder_error err = {0};
    ponder_gguf *g = NULL;
    ponder_tokenizer *tok = NULL;
    if (ponder_gguf_open(tu_shared(rel), &g, &err) != PONDER_OK)
        fail_msg("%s: %s", rel, err.msg);
    if (ponder_tokenizer_create(g, &tok, &err) != PONDER_OK)
        fail_msg("%s: %s", rel, err.msg);
    ponder_gguf_free(g);
    return tok;
}

static ponder_token *enc(const ponder_tokenizer *tok, const char *s, bool add_special, bool parse_special,
                         size_t *n)
{
    ponder_error err = {0};
    ponder_token *ids = NULL;
    if (ponder_tokenizer_encode(tok, s, strlen(s), add_special, parse_special, &ids, n, &err) != PONDER_OK)
        fail_msg("encode '%s': %s", s, err.msg);
    return ids;
}

static bool contains(const ponder_token *ids, size_t n, ponder_token id)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

/* ---- special tokens ---- */

static void test_parse_special_smollm(void **state)
{
    (void)state;
    ponder_tokenizer *tok = load(SMOLLM);
    const char *text = "<|im_start|>user\nHello<|im_end|>";
    assert_string_equal(ponder_tokenizer_token_text(tok, 1), "<|im_start|>");
    assert_string_equal(ponder_tokenizer_token_text(tok, 2), "<|im_end|>");
    assert_int_equal(ponder_tokenizer_token_kind(tok, 1), PONDER_TOKEN_CONTROL);

    size_t n_on, n_off, n_mid;
    ponder_token *on = enc(tok, text, false, true, &n_on);
    ponder_token *off = enc(tok, text, false, false, &n_off);
    ponder_token *mid = enc(tok, "user\nHello", false, false, &n_mid);

    /* on: <|im_start|>, the middle as plain text, <|im_end|> */
    assert_int_equal(n_on, n_mid + 2);
    assert_int_equal(on[0], 1);
    assert_memory_equal(on + 1, mid, n_mid * sizeof *mid);
    assert_int_equal(on[n_on - 1], 2);
    /* off: the marker texts are split like any other characters */
    assert_false(contains(off, n_off, 1));
    assert_false(contains(off, n_off, 2));
    assert_true(n_off > n_on);

    /* SmolLM2 does not add BOS: add_special changes nothing */
    size_t n_sp;
    ponder_token *sp = enc(tok, "Hello", true, false, &n_sp);
    size_t n_plain;
    ponder_token *plain = enc(tok, "Hello", false, false, &n_plain);
    assert_false(ponder_tokenizer_add_bos(tok));
    assert_int_equal(n_sp, n_plain);
    assert_memory_equal(sp, plain, n_plain * sizeof *plain);

    /* end of generation: EOS (<|im_end|>) and <|endoftext|>, not <|im_start|> */
    assert_int_equal(ponder_tokenizer_eos(tok), 2);
    assert_true(ponder_tokenizer_is_eog(tok, 2));
    assert_true(ponder_tokenizer_is_eog(tok, 0));
    assert_false(ponder_tokenizer_is_eog(tok, 1));
    assert_false(ponder_tokenizer_is_eog(tok, PONDER_TOKEN_NULL));
    assert_int_equal(ponder_tokenizer_eot(tok), 2);

    free(on);
    free(off);
    free(mid);
    free(sp);
    free(plain);
    ponder_tokenizer_free(tok);
}

static void test_parse_special_stories(void **state)
{
    (void)state;
    ponder_tokenizer *tok = load(STORIES);
    assert_int_equal(ponder_tokenizer_bos(tok), 1);
    assert_int_equal(ponder_tokenizer_eos(tok), 2);
    assert_true(ponder_tokenizer_add_bos(tok));
    assert_false(ponder_tokenizer_add_eos(tok));

    size_t n_on, n_off, n_hello;
    ponder_token *on = enc(tok, "<s>Hello", false, true, &n_on);
    ponder_token *off = enc(tok, "<s>Hello", false, false, &n_off);
    ponder_token *hello = enc(tok, "Hello", false, false, &n_hello);
    /* after a special token llama.cpp prefixes the next text with a space again */
    assert_int_equal(n_on, n_hello + 1);
    assert_int_equal(on[0], 1);
    assert_memory_equal(on + 1, hello, n_hello * sizeof *hello);
    assert_false(contains(off, n_off, 1));

    /* add_special puts BOS in front, once */
    size_t n_bos;
    ponder_token *bos = enc(tok, "Hello", true, false, &n_bos);
    assert_int_equal(n_bos, n_hello + 1);
    assert_int_equal(bos[0], 1);
    assert_memory_equal(bos + 1, hello, n_hello * sizeof *hello);

    /* empty text: nothing, or just BOS */
    size_t n_empty;
    ponder_token *empty = enc(tok, "", false, false, &n_empty);
    assert_int_equal(n_empty, 0);
    free(empty);
    empty = enc(tok, "", true, false, &n_empty);
    assert_int_equal(n_empty, 1);
    assert_int_equal(empty[0], 1);

    free(empty);
    free(on);
    free(off);
    free(hello);
    free(bos);
    ponder_tokenizer_free(tok);
}

static void test_token_to_piece(void **state)
{
    (void)state;
    ponder_tokenizer *tok = load(STORIES);
    char buf[16];
    /* control tokens render only with special */
    assert_int_equal(ponder_tokenizer_token_to_piece(tok, 1, buf, sizeof buf, false), 0);
    assert_int_equal(ponder_tokenizer_token_to_piece(tok, 1, buf, sizeof buf, true), 3);
    assert_memory_equal(buf, "<s>", 3);
    /* byte tokens render as their byte */
    ponder_token nl = -1;
    for (ponder_token i = 0; i < ponder_tokenizer_n_vocab(tok); i++)
        if (strcmp(ponder_tokenizer_token_text(tok, i), "<0x0A>") == 0)
            nl = i;
    assert_true(nl >= 0);
    assert_int_equal(ponder_tokenizer_token_kind(tok, nl), PONDER_TOKEN_BYTE);
    assert_int_equal(ponder_tokenizer_token_to_piece(tok, nl, buf, sizeof buf, false), 1);
    assert_int_equal(buf[0], '\n');
    /* U+2581 renders as a space; too small a buffer reports the size needed */
    size_t n;
    ponder_token *ids = enc(tok, "Hello", false, false, &n);
    int32_t need = ponder_tokenizer_token_to_piece(tok, ids[0], buf, 0, false);
    assert_true(need < 0);
    assert_int_equal(ponder_tokenizer_token_to_piece(tok, ids[0], buf, sizeof buf, false), -need);
    assert_int_equal(buf[0], ' ');
    /* invalid ids render as nothing */
    assert_int_equal(ponder_tokenizer_token_to_piece(tok, -5, buf, sizeof buf, true), 0);
    assert_int_equal(ponder_tokenizer_token_to_piece(tok, 1 << 30, buf, sizeof buf, true), 0);
    assert_null(ponder_tokenizer_token_text(tok, 1 << 30));
    free(ids);
    ponder_tokenizer_free(tok);
}

/* ---- round trips ---- */

#define SEP "\n__ggml_vocab_test__\n"

static void roundtrip_file(const char *model, bool skip_u2581)
{
    ponder_tokenizer *tok = load(model);
    size_t len;
    char *data = tu_read_file(tu_shared("reference/tokenizer/stories260K.gguf.inp"), &len);
    assert_non_null(data);
    int n_cases = 0;
    for (char *p = data, *end = data + len; p < end;) {
        char *hit = strstr(p, SEP);
        assert_non_null(hit);
        *hit = '\0';
        if (!(skip_u2581 && strstr(p, "\xE2\x96\x81"))) {
            size_t n;
            ponder_token *ids = enc(tok, p, false, false, &n);
            char *back = NULL;
            ponder_error err = {0};
            assert_int_equal(ponder_tokenizer_decode(tok, ids, n, false, true, &back, &err), PONDER_OK);
            if (strcmp(back, p) != 0)
                fail_msg("%s: round trip of '%s' gave '%s'", model, p, back);
            free(back);
            free(ids);
            n_cases++;
        }
        p = hit + strlen(SEP);
    }
    assert_true(n_cases >= 60);
    free(data);
    ponder_tokenizer_free(tok);
}

static void test_roundtrip_bpe(void **state)
{
    (void)state;
    roundtrip_file(SMOLLM, false);
}

/* SPM: the added leading space is removed by decode; a literal U+2581 comes back as a space */
static void test_roundtrip_spm(void **state)
{
    (void)state;
    roundtrip_file(STORIES, true);

    ponder_tokenizer *tok = load(STORIES);
    size_t n;
    ponder_token *ids = enc(tok, "a\xE2\x96\x81" "b", true, false, &n);
    char *back = NULL;
    assert_int_equal(ponder_tokenizer_decode(tok, ids, n, false, true, &back, NULL), PONDER_OK);
    /* BOS renders as nothing, so the first piece keeps its space (llama.cpp's lstrip applies
     * to the first token only) */
    assert_string_equal(back, " a b");
    free(back);
    assert_int_equal(ponder_tokenizer_decode(tok, ids + 1, n - 1, false, true, &back, NULL), PONDER_OK);
    assert_string_equal(back, "a b");
    free(back);
    assert_int_equal(ponder_tokenizer_decode(tok, ids, n, true, false, &back, NULL), PONDER_OK);
    assert_string_equal(back, "<s> a b");
    free(back);
    ponder_token bad = 99999;
    ponder_error err = {0};
    assert_int_equal(ponder_tokenizer_decode(tok, &bad, 1, false, false, &back, &err), PONDER_ERR_INVALID_ARG);
    assert_null(back);
    free(ids);
    ponder_tokenizer_free(tok);
}

/* GPT-2 keeps llama.cpp's clean_up_tokenization_spaces: " ," " !" " 'm" lose the space */
static void test_decode_clean_spaces(void **state)
{
    (void)state;
    ponder_tokenizer *tok = load(GPT2);
    size_t n;
    ponder_token *ids = enc(tok, "Hello , world ! I 'm here ' ok", false, false, &n);
    char *back = NULL;
    assert_int_equal(ponder_tokenizer_decode(tok, ids, n, false, false, &back, NULL), PONDER_OK);
    assert_string_equal(back, "Hello, world! I'm here'ok");
    free(back);
    free(ids);
    ponder_tokenizer_free(tok);
}

/* ---- streaming ---- */

static void check_stream(const char *model, const char *text)
{
    ponder_tokenizer *tok = load(model);
    size_t n;
    ponder_token *ids = enc(tok, text, false, false, &n);
    char *whole = NULL;
    assert_int_equal(ponder_tokenizer_decode(tok, ids, n, false, false, &whole, NULL), PONDER_OK);

    ponder_detokenizer *d = NULL;
    assert_int_equal(ponder_detokenizer_create(tok, false, &d, NULL), PONDER_OK);
    char acc[256] = {0};
    size_t acc_n = 0;
    int n_held = 0; /* pushes that returned nothing although the piece was not empty */
    for (size_t i = 0; i < n; i++) {
        const char *s;
        size_t len;
        char piece[64];
        int32_t plen = ponder_tokenizer_token_to_piece(tok, ids[i], piece, sizeof piece, false);
        ponder_detokenizer_push(d, ids[i], &s, &len);
        if (plen > 0 && len == 0)
            n_held++;
        /* every chunk handed out is whole UTF-8 characters */
        for (size_t k = 0; k < len;) {
            unsigned char c = (unsigned char)s[k];
            size_t need = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
            assert_true((c & 0xC0) != 0x80);
            assert_true(k + need <= len);
            k += need;
        }
        assert_true(acc_n + len < sizeof acc);
        memcpy(acc + acc_n, s, len);
        acc_n += len;
    }
    const char *s;
    size_t len;
    ponder_detokenizer_flush(d, &s, &len);
    assert_int_equal(len, 0);
    assert_int_equal(acc_n, strlen(whole));
    assert_memory_equal(acc, whole, acc_n);
    assert_true(n_held > 0); /* the emoji really was split over several tokens */

    /* an incomplete sequence is held back and comes out on flush */
    ponder_token first_byte = ids[0];
    for (size_t i = 0; i < n; i++) {
        char piece[8];
        if (ponder_tokenizer_token_to_piece(tok, ids[i], piece, sizeof piece, false) >= 1 &&
            (unsigned char)piece[0] == 0xF0) {
            first_byte = ids[i];
            break;
        }
    }
    ponder_detokenizer_push(d, first_byte, &s, &len);
    assert_int_equal(len, 0);
    ponder_detokenizer_flush(d, &s, &len);
    assert_true(len >= 1);
    assert_int_equal((unsigned char)s[0], 0xF0);
    ponder_detokenizer_flush(d, &s, &len);
    assert_int_equal(len, 0);

    ponder_detokenizer_free(d);
    free(whole);
    free(ids);
    ponder_tokenizer_free(tok);
}

static void test_stream_emoji_spm(void **state)
{
    (void)state;
    /* stories260K has no emoji tokens: each one becomes four <0xNN> byte tokens */
    check_stream(STORIES, " this is \xF0\x9F\xA6\x99.cpp and \xF0\x9F\x98\x81!");
}

static void test_stream_emoji_bpe(void **state)
{
    (void)state;
    check_stream(SMOLLM, "llama \xF0\x9F\xA6\x99\xF0\x9F\xA6\x99 and \xF0\x9F\x98\xB6\xE2\x80\x8D\xF0\x9F\x8C\xAB\xEF\xB8\x8F");
}

/* ---- invalid input ---- */

static void test_invalid_utf8(void **state)
{
    (void)state;
    ponder_tokenizer *tok = load(SMOLLM);
    static const struct {
        const char *s;
        size_t len, at;
    } BAD[] = {
        {"abc\xFF", 4, 3},          /* never valid */
        {"ok \xE2\x96", 5, 3},      /* truncated */
        {"\xC0\xAF", 2, 0},         /* overlong '/' */
        {"x\xED\xA0\x80y", 5, 1},   /* surrogate */
        {"\xF4\x90\x80\x80", 4, 0}, /* above U+10FFFF */
        {"a\x80", 2, 1},            /* stray continuation */
    };
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        ponder_error err = {0};
        ponder_token *ids = (ponder_token *)&err;
        size_t n = 7;
        assert_int_equal(ponder_tokenizer_encode(tok, BAD[i].s, BAD[i].len, false, false, &ids, &n, &err),
                         PONDER_ERR_INVALID_ARG);
        char want[64];
        snprintf(want, sizeof want, "invalid UTF-8 at byte %zu", BAD[i].at);
        assert_string_equal(err.msg, want);
        assert_null(ids);
        assert_int_equal(n, 0);
    }
    ponder_tokenizer_free(tok);
}

/* ---- bad metadata: one small GGUF per failure mode ---- */

typedef struct tiny_vocab {
    const char *model;        /* tokenizer.ggml.model, NULL = absent */
    const char *pre;          /* tokenizer.ggml.pre, NULL = absent */
    const char *const *tokens;
    int n_tokens;
    const char *const *merges;
    int n_merges;
    int n_scores;             /* scores array length (0 = absent) */
    int64_t bos;              /* -2 = absent */
} tiny_vocab;

static ponder_status set_str_array(ponder_gguf_writer *w, const char *key, const char *const *s, int n)
{
    ponder_gguf_value *elems = calloc((size_t)n + 1, sizeof *elems);
    for (int i = 0; i < n; i++) {
        elems[i].type = PONDER_GGUF_STRING;
        elems[i].v.str.data = s[i];
        elems[i].v.str.len = strlen(s[i]);
    }
    ponder_gguf_value v = {.type = PONDER_GGUF_ARRAY};
    v.v.arr.elem_type = PONDER_GGUF_STRING;
    v.v.arr.n = (uint64_t)n;
    v.v.arr.elems = elems;
    ponder_status st = ponder_gguf_writer_set(w, key, &v, NULL);
    free(elems);
    return st;
}

/* Writes the vocabulary to a temporary GGUF and tries to make a tokenizer of it. */
static ponder_status try_tiny(const tiny_vocab *tv, ponder_tokenizer **out, ponder_error *err)
{
    ponder_gguf_writer *w = NULL;
    assert_int_equal(ponder_gguf_writer_create(&w, NULL), PONDER_OK);
    if (tv->model)
        assert_int_equal(ponder_gguf_writer_set_str(w, "tokenizer.ggml.model", tv->model, NULL), PONDER_OK);
    if (tv->pre)
        assert_int_equal(ponder_gguf_writer_set_str(w, "tokenizer.ggml.pre", tv->pre, NULL), PONDER_OK);
    if (tv->tokens)
        assert_int_equal(set_str_array(w, "tokenizer.ggml.tokens", tv->tokens, tv->n_tokens), PONDER_OK);
    if (tv->merges)
        assert_int_equal(set_str_array(w, "tokenizer.ggml.merges", tv->merges, tv->n_merges), PONDER_OK);
    if (tv->n_scores > 0) {
        float *sc = calloc((size_t)tv->n_scores, sizeof *sc);
        ponder_gguf_value v = {.type = PONDER_GGUF_ARRAY};
        v.v.arr.elem_type = PONDER_GGUF_FLOAT32;
        v.v.arr.n = (uint64_t)tv->n_scores;
        v.v.arr.data = sc;
        assert_int_equal(ponder_gguf_writer_set(w, "tokenizer.ggml.scores", &v, NULL), PONDER_OK);
        free(sc);
    }
    if (tv->bos != -2)
        assert_int_equal(ponder_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)tv->bos, NULL),
                         PONDER_OK);

    char path[] = "/tmp/ponder-tok-test-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(ponder_gguf_writer_write(w, path, NULL), PONDER_OK);
    ponder_gguf_writer_free(w);
    ponder_gguf *g = NULL;
    ponder_error gerr = {0};
    if (ponder_gguf_open(path, &g, &gerr) != PONDER_OK)
        fail_msg("%s", gerr.msg);
    unlink(path);
    ponder_status st = ponder_tokenizer_create(g, out, err);
    ponder_gguf_free(g);
    return st;
}

static const char *const TINY_TOKENS[] = {"a", "b", "ab", "c", "\xC4\xA0", ("\xC4\xA0" "c")}; /* "Ġ", "Ġc" */
static const char *const TINY_MERGES[] = {"a b", "\xC4\xA0 c"};

static void expect_error(const tiny_vocab *tv, ponder_status want, const char *needle)
{
    ponder_tokenizer *tok = (ponder_tokenizer *)&tok;
    ponder_error err = {0};
    assert_int_equal(try_tiny(tv, &tok, &err), want);
    assert_null(tok);
    if (!strstr(err.msg, needle))
        fail_msg("error '%s' does not mention '%s'", err.msg, needle);
}

static void test_tiny_bpe_ok(void **state)
{
    (void)state;
    tiny_vocab tv = {"gpt2", "gpt-2", TINY_TOKENS, 6, TINY_MERGES, 2, 0, -2};
    ponder_tokenizer *tok = NULL;
    ponder_error err = {0};
    if (try_tiny(&tv, &tok, &err) != PONDER_OK)
        fail_msg("%s", err.msg);
    assert_string_equal(ponder_tokenizer_pre(tok), "gpt-2");
    size_t n;
    /* "abc c": pieces "abc", " c" -> merges a+b, then Ġ+c */
    ponder_token *ids = enc(tok, "abc c", false, false, &n);
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], 2);
    assert_int_equal(ids[1], 3);
    assert_int_equal(ids[2], 5);
    free(ids);
    /* a character with no token is dropped byte by byte, as in llama.cpp */
    ids = enc(tok, "axb", false, false, &n);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 0);
    assert_int_equal(ids[1], 1);
    free(ids);
    /* BPE without a bos key: llama.cpp's default id 11 does not exist here */
    assert_int_equal(ponder_tokenizer_bos(tok), PONDER_TOKEN_NULL);
    ponder_tokenizer_free(tok);
}

static void test_tiny_missing_pre_is_default(void **state)
{
    (void)state;
    tiny_vocab tv = {"gpt2", NULL, TINY_TOKENS, 6, TINY_MERGES, 2, 0, -2};
    ponder_tokenizer *tok = NULL;
    assert_int_equal(try_tiny(&tv, &tok, NULL), PONDER_OK);
    assert_string_equal(ponder_tokenizer_pre(tok), "default");
    ponder_tokenizer_free(tok);
}

static void test_unknown_pre(void **state)
{
    (void)state;
    tiny_vocab tv = {"gpt2", "no-such-pre", TINY_TOKENS, 6, TINY_MERGES, 2, 0, -2};
    expect_error(&tv, PONDER_ERR_UNSUPPORTED, "'no-such-pre' is not supported");
    expect_error(&tv, PONDER_ERR_UNSUPPORTED, "smollm");
}

static void test_unknown_model(void **state)
{
    (void)state;
    tiny_vocab tv = {"bert", NULL, TINY_TOKENS, 6, NULL, 0, 0, -2};
    expect_error(&tv, PONDER_ERR_UNSUPPORTED, "'bert' is not supported (supported: llama, gpt2)");
    tv.model = NULL;
    expect_error(&tv, PONDER_ERR_NOT_FOUND, "tokenizer.ggml.model");
}

static void test_bad_metadata(void **state)
{
    (void)state;
    tiny_vocab no_tokens = {"gpt2", "gpt-2", NULL, 0, TINY_MERGES, 2, 0, -2};
    expect_error(&no_tokens, PONDER_ERR_NOT_FOUND, "tokenizer.ggml.tokens");

    tiny_vocab no_merges = {"gpt2", "gpt-2", TINY_TOKENS, 6, NULL, 0, 0, -2};
    expect_error(&no_merges, PONDER_ERR_NOT_FOUND, "tokenizer.ggml.merges");

    static const char *const BAD_MERGES[] = {"a b", "ab"};
    tiny_vocab bad_merge = {"gpt2", "gpt-2", TINY_TOKENS, 6, BAD_MERGES, 2, 0, -2};
    expect_error(&bad_merge, PONDER_ERR_FORMAT, "merges[1] 'ab'");

    tiny_vocab short_scores = {"llama", NULL, TINY_TOKENS, 6, NULL, 0, 5, -2};
    expect_error(&short_scores, PONDER_ERR_FORMAT, "scores has 5 entries");

    tiny_vocab bad_bos = {"llama", NULL, TINY_TOKENS, 6, NULL, 0, 6, 6};
    expect_error(&bad_bos, PONDER_ERR_FORMAT, "bos_token_id = 6");

    static const char *const DUP[] = {"a", "b", "a"};
    tiny_vocab dup = {"llama", NULL, DUP, 3, NULL, 0, 3, -2};
    expect_error(&dup, PONDER_ERR_FORMAT, "duplicates token 0");

    /* 0xFFFFFFFF means "none" (stories260K's padding id): the default BOS stays */
    tiny_vocab none_bos = {"llama", NULL, TINY_TOKENS, 6, NULL, 0, 6, 0xFFFFFFFF};
    ponder_tokenizer *tok = NULL;
    assert_int_equal(try_tiny(&none_bos, &tok, NULL), PONDER_OK);
    assert_int_equal(ponder_tokenizer_bos(tok), 1);
    ponder_tokenizer_free(tok);
    ponder_tokenizer_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_special_smollm),
        cmocka_unit_test(test_parse_special_stories),
        cmocka_unit_test(test_token_to_piece),
        cmocka_unit_test(test_roundtrip_bpe),
        cmocka_unit_test(test_roundtrip_spm),
        cmocka_unit_test(test_decode_clean_spaces),
        cmocka_unit_test(test_stream_emoji_spm),
        cmocka_unit_test(test_stream_emoji_bpe),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_tiny_bpe_ok),
        cmocka_unit_test(test_tiny_missing_pre_is_default),
        cmocka_unit_test(test_unknown_pre),
        cmocka_unit_test(test_unknown_model),
        cmocka_unit_test(test_bad_metadata),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
