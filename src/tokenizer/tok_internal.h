/*
 * tok_internal.h — the tokenizer's private state, shared by the files of src/tokenizer/.
 *
 * vocab.c builds a ponder_tokenizer from GGUF metadata (once, then immutable); spm.c and
 * bpe.c turn one text fragment into ids; pretok.c splits text for BPE with the regex list
 * of the named pre-tokenizer; encode.c cuts out special tokens and dispatches; decode.c
 * turns ids back into bytes. The behaviour copied is llama.cpp's llama-vocab.cpp and
 * unicode.cpp at commit c392e509 (see shared/reference/tokenizer/README.md).
 */
#ifndef PONDER_TOK_INTERNAL_H
#define PONDER_TOK_INTERNAL_H

#include "ponder/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* Token attributes as bit flags (llama.cpp's llama_token_attr): the GGUF token type gives
 * one of the first six; the loader may add CONTROL (tokens that look like end-of-turn or
 * FIM markers) and RSTRIP (phi-3 special tokens). */
enum {
    TOK_ATTR_UNDEFINED = 0,
    TOK_ATTR_UNKNOWN = 1 << 0,
    TOK_ATTR_UNUSED = 1 << 1,
    TOK_ATTR_NORMAL = 1 << 2,
    TOK_ATTR_CONTROL = 1 << 3,
    TOK_ATTR_USER_DEFINED = 1 << 4,
    TOK_ATTR_BYTE = 1 << 5,
    TOK_ATTR_LSTRIP = 1 << 7,
    TOK_ATTR_RSTRIP = 1 << 8,
};

/* ---- byte-string hash map (open addressing, keys owned elsewhere) ---- */

typedef struct tok_map_entry {
    const char *key; /* NULL = empty slot */
    uint32_t len;
    int32_t val;
} tok_map_entry;

typedef struct tok_map {
    tok_map_entry *slots;
    size_t mask; /* n_slots - 1, n_slots a power of two */
    size_t n;
} tok_map;

ponder_status tok_map_init(tok_map *m, size_t n_expected, ponder_error *err);
void tok_map_free(tok_map *m);
/* Inserts key (not copied) unless present. Returns true if inserted, false if the key
 * existed (its value is left alone). The map never fills: it was sized at init. */
bool tok_map_insert(tok_map *m, const char *key, size_t len, int32_t val);
/* Value of key, or -1. */
int32_t tok_map_get(const tok_map *m, const char *key, size_t len);
/* Value of the key "a b" (a, one space, b) without building it, or -1. */
int32_t tok_map_get_pair(const tok_map *m, const char *a, size_t a_len, const char *b, size_t b_len);

/* ---- UTF-8 ---- */

/* Length of the UTF-8 sequence that starts with byte c, from its high bits only (1 for a
 * stray continuation byte), like llama.cpp's unicode_len_utf8. */
static inline size_t tok_utf8_len(unsigned char c)
{
    static const unsigned char lookup[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lookup[c >> 4];
}
/* Offset of the first byte that is not part of well-formed UTF-8 (RFC 3629: no overlongs,
 * surrogates or values above U+10FFFF), or len if all of text is valid. */
size_t tok_utf8_invalid_at(const char *text, size_t len);

/* GPT-2's bytes_to_unicode(): printable Latin-1 bytes (0x21-0x7E, 0xA1-0xAC, 0xAE-0xFF)
 * stand for themselves; the other 68 bytes, in increasing order, become U+0100..U+0143. */
static inline uint32_t tok_byte_cpt(unsigned char b)
{
    if (b <= 0x20)
        return 0x100u + b;          /* 33 bytes: U+0100..U+0120 */
    if (b >= 0x7F && b <= 0xA0)
        return 0x121u + (b - 0x7Fu); /* 34 bytes: U+0121..U+0142 */
    if (b == 0xAD)
        return 0x143u;
    return b;
}
/* Inverse of tok_byte_cpt, or -1 for a code point outside its image. */
static inline int tok_cpt_byte(uint32_t cpt)
{
    if (cpt < 0x100)
        return (cpt <= 0x20 || (cpt >= 0x7F && cpt <= 0xA0) || cpt == 0xAD) ? -1 : (int)cpt;
    if (cpt <= 0x120)
        return (int)(cpt - 0x100);
    if (cpt <= 0x142)
        return (int)(cpt - 0x121 + 0x7F);
    if (cpt == 0x143)
        return 0xAD;
    return -1;
}

/* ---- pre-tokenizers ---- */

typedef struct tok_pre_def tok_pre_def; /* one row of the table in pretok.c */

typedef struct tok_pretok {
    const tok_pre_def *def;
    int n_regex;
    pcre2_code *code[8];
} tok_pretok;

/* Finds the pre-tokenizer called name; NULL if unknown. */
const tok_pre_def *tok_pre_find(const char *name, size_t len);
/* Comma-separated list of supported names, for error messages. */
const char *tok_pre_supported(void);
const char *tok_pre_name(const tok_pre_def *d);
bool tok_pre_ignore_merges(const tok_pre_def *d);
bool tok_pre_clean_spaces(const tok_pre_def *d);
int tok_pre_add_bos(const tok_pre_def *d); /* 1 true, 0 false, -1 keep the default */
bool tok_pre_no_bos(const tok_pre_def *d); /* chatglm: no default BOS id */

ponder_status tok_pretok_compile(tok_pretok *p, const tok_pre_def *def, ponder_error *err);
void tok_pretok_free(tok_pretok *p);

/* A piece of text: [off, off+len) of the fragment being split. */
typedef struct tok_span {
    size_t off, len;
} tok_span;

typedef struct tok_spans {
    tok_span *v;
    size_t n, cap;
} tok_spans;

/* Splits text[0..len) with the regex chain; pieces replace *out. text must be valid UTF-8. */
ponder_status tok_pretok_split(const tok_pretok *p, const char *text, size_t len, tok_spans *out,
                               ponder_error *err);

/* ---- growable id list ---- */

typedef struct tok_ids {
    ponder_token *v;
    size_t n, cap;
} tok_ids;

ponder_status tok_ids_push(tok_ids *ids, ponder_token id, ponder_error *err);

/* ---- the tokenizer ---- */

struct ponder_tokenizer {
    ponder_vocab_kind kind;
    const tok_pre_def *pre; /* BPE only */
    tok_pretok pretok;      /* BPE only */

    int32_t n_vocab;
    char *text_buf;          /* all token texts, each NUL-terminated */
    uint32_t *text_off;      /* (n_vocab + 1) offsets into text_buf; length = off[i+1]-off[i]-1 */
    float *scores;           /* (n_vocab) SPM merge priority */
    uint16_t *attr;          /* (n_vocab) TOK_ATTR_* */
    uint8_t *kind_of;        /* (n_vocab) ponder_token_kind as the file says (CONTROL if promoted) */
    tok_map token_map;       /* text -> id */

    /* SPM: every pair of adjacent characters inside some token text (keys point into
     * text_buf). Where the text has a pair not in this set no merge can cross, so the
     * two sides are tokenized separately: same result, much smaller merge queues. */
    tok_map spm_pairs;

    char *merge_buf;         /* BPE: copies of the merge strings "a b" */
    tok_map merge_map;       /* BPE: "a b" -> rank */

    /* special tokens for tokenizer_st_partition: CONTROL, USER_DEFINED and UNKNOWN ids,
     * longest text first */
    ponder_token *special;
    int32_t n_special;

    /* rendered pieces (as llama_token_to_piece with special = true) */
    char *piece_buf;
    uint32_t *piece_off; /* (n_vocab + 1) */
    uint32_t max_piece_len;

    /* SPM byte fallback: id of "<0xXX>" (else of the one-byte text), -1 if neither */
    ponder_token byte_tok[256];

    ponder_token bos, eos, eot, eom, unk, pad, sep;
    ponder_token fim_pre, fim_suf, fim_mid, fim_pad, fim_rep, fim_sep;
    ponder_token *eog; /* sorted ids that end generation */
    int32_t n_eog;

    bool add_bos, add_eos, add_space_prefix, clean_spaces, ignore_merges;
};

static inline const char *tok_text(const ponder_tokenizer *t, ponder_token id, size_t *len)
{
    *len = t->text_off[id + 1] - t->text_off[id] - 1;
    return t->text_buf + t->text_off[id];
}

static inline ponder_token tok_lookup(const ponder_tokenizer *t, const char *s, size_t len)
{
    return tok_map_get(&t->token_map, s, len);
}

/* The merge queue both tokenizers use: a candidate merge of the adjacent symbols left and
 * right, popped highest priority first (SPM: the merged token's score; BPE: the negated
 * merge rank), ties to the leftmost pair, as llama.cpp's llm_bigram comparators order
 * them. size is the pair's byte length when queued: a mismatch when popped means one side
 * has merged since, and the entry is stale. */
typedef struct tok_bigram {
    int left, right;
    double priority;
    size_t size;
} tok_bigram;

typedef struct tok_bigram_heap {
    tok_bigram *v;
    size_t n, cap;
} tok_bigram_heap;

ponder_status tok_bigram_push(tok_bigram_heap *h, tok_bigram b, ponder_error *err);
tok_bigram tok_bigram_pop(tok_bigram_heap *h); /* h->n must be > 0 */

/* Tokenizes one raw-text fragment (already prefixed/escaped for SPM by the caller) and
 * appends the ids. */
ponder_status tok_spm_encode(const ponder_tokenizer *t, const char *text, size_t len, tok_ids *out,
                             ponder_error *err);
ponder_status tok_bpe_encode(const ponder_tokenizer *t, const char *text, size_t len, tok_ids *out,
                             ponder_error *err);

/* Builds piece_buf/piece_off (decode.c); called once by the loader. */
ponder_status tok_build_pieces(ponder_tokenizer *t, ponder_error *err);

#endif /* PONDER_TOK_INTERNAL_H */
