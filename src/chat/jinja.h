/*
 * jinja.h — internals of Ponder's Jinja interpreter (src/chat/): the arena, the value model,
 * tokens, the AST and the entry points of lexer, parser and evaluator.
 *
 * Memory: everything a parse or a render allocates lives in one arena (jarena), freed in one
 * go, so values are plain structs passed by value and never reference-counted. Errors unwind
 * with longjmp to the one setjmp in the public entry points (chat.c); the arena makes that
 * leak-free. Values are immutable once built, except namespaces (the only thing a template
 * may mutate, through `{% set ns.x = ... %}`).
 */
#ifndef PONDER_CHAT_JINJA_H
#define PONDER_CHAT_JINJA_H

#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ponder/common.h"

/* ---- arena ---- */
typedef struct jarena_chunk jarena_chunk;
typedef struct jarena {
    jarena_chunk *head;
    size_t used_bytes;  /* total handed out, checked against cap_bytes */
    size_t cap_bytes;
    jmp_buf *oom_jmp;   /* where to unwind when the cap is hit or malloc fails */
    ponder_error *err;
} jarena;

void *ja_alloc(jarena *a, size_t n);
char *ja_strndup(jarena *a, const char *s, size_t n);
void ja_free_all(jarena *a);

/* ---- values ---- */
typedef enum jv_type {
    JV_UNDEF = 0,
    JV_NONE,
    JV_BOOL,
    JV_INT,
    JV_FLOAT,
    JV_STR,
    JV_LIST,
    JV_DICT,
    JV_NS,    /* namespace(): a mutable dict with attribute access */
    JV_MACRO,
    JV_FUNC,  /* a global function or a bound method */
    JV_LOOP,  /* the `loop` variable of a for loop */
} jv_type;

typedef struct jlist jlist;
typedef struct jdict jdict;
typedef struct jmacro jmacro;
typedef struct jfunc jfunc;
typedef struct jloop jloop;

typedef struct jv {
    uint8_t t;
    uint8_t markup; /* JV_STR: a Markup ("safe") string */
    union {
        bool b;
        int64_t i;
        double f;
        struct {
            const char *p; /* NUL-terminated; for JV_UNDEF the missing name, or NULL */
            size_t n;
        } s;
        jlist *l;
        jdict *d;
        jmacro *m;
        jfunc *fn;
        jloop *loop;
    } u;
} jv;

struct jlist {
    size_t n, cap;
    jv *v;
    bool tuple; /* prints as (a, b) */
};

struct jdict {
    size_t n, cap;
    jv *k;
    jv *v;
};

/* ---- tokens ---- */
typedef enum jtok_type {
    JT_EOF = 0,
    JT_TEXT,
    JT_VAR_BEGIN,
    JT_VAR_END,
    JT_BLOCK_BEGIN,
    JT_BLOCK_END,
    JT_NAME,
    JT_STRING,
    JT_INT,
    JT_FLOAT,
    JT_OP,
} jtok_type;

/* Operator codes: single characters are their own code, two-character ones below. */
enum {
    JOP_EQ = 256, JOP_NE, JOP_LE, JOP_GE, JOP_FLOORDIV, JOP_POW,
    /* AST-only */
    JOP_IN, JOP_NOTIN, JOP_NEG, JOP_POS,
};

typedef struct jtok {
    jtok_type t;
    int op;
    int line, col;
    const char *s; /* NAME/STRING/TEXT, NUL-terminated */
    size_t n;
    int64_t i;
    double f;
} jtok;

typedef struct jtokens {
    jtok *v;
    size_t n, cap;
} jtokens;

/* ---- AST ---- */
typedef enum jnode_kind {
    /* statements */
    JN_TEXT, JN_OUTPUT, JN_IF, JN_FOR, JN_SET, JN_SET_BLOCK, JN_MACRO, JN_CALL_BLOCK,
    JN_FILTER_BLOCK, JN_BREAK, JN_CONTINUE, JN_WITH, JN_SCOPE,
    /* expressions */
    JN_LITERAL, JN_NAME, JN_GETATTR, JN_GETITEM, JN_SLICE, JN_CALL, JN_FILTER, JN_TEST,
    JN_BINOP, JN_UNARY, JN_NOT, JN_AND, JN_OR, JN_COMPARE, JN_COND, JN_LIST, JN_TUPLE, JN_DICT,
} jnode_kind;

typedef struct jnode jnode;
typedef struct jnodes {
    jnode **v;
    size_t n, cap;
} jnodes;

struct jnode {
    jnode_kind k;
    int op;
    int line, col;
    bool flag;          /* TEST: negated; FOR: recursive; SLICE parts present bits in op */
    const char *s;      /* name, attribute, filter/test/macro name, text */
    size_t n;
    jv lit;             /* LITERAL */
    jnode *a, *b, *c, *d;
    jnodes body;        /* statements / args / items / compare operands */
    jnodes body2;       /* else-branch / kwarg values / dict values / macro defaults */
    const char **names; /* kwarg names / targets / macro params */
    size_t n_names;
    int *ops;           /* COMPARE: one op per operand in body */
};

/* ---- limits (hostile templates must fail cleanly, not crash or hang) ---- */
#define JINJA_MAX_PARSE_DEPTH 200      /* nested expressions/blocks */
#define JINJA_MAX_EVAL_DEPTH 2000      /* C recursion of the evaluator */
#define JINJA_MAX_MACRO_DEPTH 250      /* nested macro calls (Python stops near 1000 frames) */
#define JINJA_MAX_OUTPUT_BYTES (64u << 20)
#define JINJA_MAX_ARENA_BYTES (256u << 20)
#define JINJA_MAX_STEPS 10000000ull    /* evaluation steps per render (real templates: ~1e4) */

typedef struct jparse {
    jarena *a;
    jmp_buf *jmp;
    ponder_error *err;
    jtokens toks;
    size_t pos;
    int depth;
} jparse;

/* Raises a FORMAT/UNSUPPORTED error "line L, column C: ..." and unwinds. */
_Noreturn void jparse_fail(jparse *p, ponder_status st, int line, int col, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

/* Lexes src (already newline-normalized, trailing newline dropped) into p->toks. */
void jinja_lex(jparse *p, const char *src, size_t len);
/* Parses p->toks into a statement list. */
jnode *jinja_parse(jparse *p);

/* Normalizes \r\n and \r to \n and drops one trailing newline, into the arena. */
char *jinja_normalize_source(jarena *a, const char *src, size_t len, size_t *out_len);

/* Python whitespace (str.isspace) for one code point. */
bool jinja_py_isspace(uint32_t cp);
/* Decodes one UTF-8 code point at s[0..n); invalid bytes decode as themselves (length 1). */
uint32_t jinja_utf8_decode(const char *s, size_t n, size_t *len);

/* ---- rendering ---- */
typedef struct jrender jrender;

/* Renders the template `root` with the variables of a jansson object (json_t *). */
ponder_status jinja_render(const jnode *root, const void *vars_json, char **out, size_t *out_len,
                           ponder_error *err);

#endif
