/*
 * grammar_internal.h — the compiled grammar shared by the parser (gbnf.c), the UTF-8
 * class automata (utf8class.c) and the matcher (matcher.c).
 *
 * A grammar is flat, as llama.cpp's: elems[] holds every rule's alternatives, each a run
 * of elements ended by GR_END; a position is an index into elems[]. Terminals are byte
 * automata: a GR_CLASS element names the start state of a DFA over bytes (one state for
 * an ASCII class or a literal byte, a few for a multi-byte UTF-8 class), so the matcher
 * only ever sees bytes.
 */
#ifndef PONDER_GRAMMAR_INTERNAL_H
#define PONDER_GRAMMAR_INTERNAL_H

#include "ponder/grammar.h"

enum { GR_END = 0, GR_REF = 1, GR_CLASS = 2 };

typedef struct gr_elem {
    uint32_t kind; /* GR_END, GR_REF (arg: rule), GR_CLASS (arg: DFA start state) */
    uint32_t arg;
} gr_elem;

/* DFA transition values: dead, a whole character matched, or a state id >= 2. */
#define GR_DFA_DEAD 0u
#define GR_DFA_ACCEPT 1u

struct ponder_grammar {
    gr_elem *elems;
    uint32_t n_elems;
    uint32_t *alts;     /* first position of every alternative, rule by rule */
    uint32_t *rule_alt; /* rule r's alternatives: alts[rule_alt[r] .. rule_alt[r + 1]) */
    uint32_t n_rules;
    char **names;       /* rule names, for messages */
    uint32_t root;
    uint16_t *dfa;      /* n_dfa * 256: dfa[s * 256 + byte]; states 0, 1 unused */
    uint32_t n_dfa;
};

/* Code point ranges [lo, hi] (inclusive, sorted, disjoint) → a DFA appended to *dfa
 * (n_dfa states so far, cap grown as needed); returns the start state, 0 on allocation
 * failure or when the DFA would exceed 65535 states. */
uint32_t gr_utf8_class_dfa(const uint32_t *lo, const uint32_t *hi, uint32_t n, uint16_t **dfa, uint32_t *n_dfa,
                           uint32_t *cap);

/* Growable byte buffer for generated text. */
typedef struct gr_buf {
    char *s;
    size_t n, cap;
    bool oom;
} gr_buf;
void gr_buf_put(gr_buf *b, const char *s, size_t n);
void gr_buf_puts(gr_buf *b, const char *s);
void gr_buf_printf(gr_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* A vocabulary of the 256 single bytes plus one end-of-generation token (id 256), so text
 * can be matched byte by byte: the grammar tests and the fuzz harness use it (vocab.c). */
ponder_status gr_vocab_bytes(ponder_grammar_vocab **out, ponder_error *err);

#endif /* PONDER_GRAMMAR_INTERNAL_H */
