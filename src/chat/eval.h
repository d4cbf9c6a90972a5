/*
 * eval.h — what the evaluator (eval.c), the value functions (value.c) and the built-in
 * filters, tests and methods (builtins.c) share during one render.
 */
#ifndef PONDER_CHAT_EVAL_H
#define PONDER_CHAT_EVAL_H

#include "chat/jinja.h"

typedef struct jframe jframe;
struct jframe {
    jframe *parent;
    jdict vars;
};

/* Growable output/string buffer in the render arena, capped. */
typedef struct jbuf {
    char *p;
    size_t n, cap;
} jbuf;

struct jmacro {
    const jnode *def;   /* JN_MACRO, or JN_CALL_BLOCK for `caller` */
    const char *name;
    jframe *closure;    /* scope the body sees (live, not a snapshot) */
    jv caller;          /* JV_MACRO for call blocks, else undefined */
};

typedef enum jfunc_kind {
    JF_GLOBAL,  /* range, namespace, dict, raise_exception, strftime_now, ... */
    JF_METHOD,  /* a method bound to self */
    JF_CYCLER,  /* loop.cycle */
} jfunc_kind;

struct jfunc {
    jfunc_kind kind;
    const char *name;
    jv self;
};

struct jloop {
    int64_t index0, length;
    const jlist *items;
    int64_t depth0;
    const jnode *node;  /* the JN_FOR, for recursive loops: loop(children) */
    jframe *frame;      /* scope the loop runs in */
    jv changed_last;    /* loop.changed() memory */
};

/* Arguments of a call: positional then keyword. */
typedef struct jargs {
    size_t n_pos;
    jv *pos;
    size_t n_kw;
    const char **kw_names;
    jv *kw;
} jargs;

struct jrender {
    jarena a;
    jmp_buf jmp;
    ponder_error *err;
    uint64_t steps;
    int depth;
    int macro_depth;
    jframe *globals;
    jbuf *out;
    int loop_ctl;       /* 1 break, 2 continue pending */
    const jnode *at;    /* node being evaluated, for error positions */
};

_Noreturn void jr_fail(jrender *r, const jnode *at, ponder_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* constructors */
jv jv_undef(const char *name);
jv jv_none(void);
jv jv_bool(bool b);
jv jv_int(int64_t i);
jv jv_float(double f);
jv jv_str(jrender *r, const char *s, size_t n);          /* copies */
jv jv_str_nocopy(const char *s, size_t n);              /* s NUL-terminated, lives long enough */
jv jv_cstr(jrender *r, const char *s);
jv jv_list_new(jrender *r, size_t cap);
void jv_list_push(jrender *r, jv *list, jv v);
jv jv_dict_new(jrender *r);
void jv_dict_set(jrender *r, jdict *d, jv k, jv v);     /* replaces an equal key */
bool jv_dict_get(const jdict *d, jv k, jv *out);
bool jdict_get_cstr(const jdict *d, const char *k, jv *out);
void jdict_set_cstr(jrender *r, jdict *d, const char *k, jv v);
jv jv_func(jrender *r, jfunc_kind kind, const char *name, jv self);

/* buffers */
void jb_put(jrender *r, jbuf *b, const char *s, size_t n);
void jb_putc(jrender *r, jbuf *b, char c);
void jb_puts(jrender *r, jbuf *b, const char *s);
jv jb_take(jrender *r, jbuf *b);                        /* the buffer as a string value */

/* Python semantics */
bool jv_truthy(jv v);
bool jv_equal(jv a, jv b);
int jv_compare(jrender *r, const jnode *at, jv a, jv b); /* <0, 0, >0; type error otherwise */
void jv_write_str(jrender *r, jbuf *b, jv v);           /* str(v) */
void jv_write_repr(jrender *r, jbuf *b, jv v);          /* repr(v) */
jv jv_to_str(jrender *r, jv v);                         /* str(v) as a value (strings as is) */
const char *jv_type_name(jv v);                         /* Python's type name, for messages */
bool jv_is_number(jv v);                                /* int/float/bool */
double jv_as_double(jv v);
void jv_write_float(jbuf *b, jrender *r, double f);     /* Python repr(float) */

/* json.dumps(v, ensure_ascii, indent, separators, sort_keys); indent NULL = none */
typedef struct jjson_opts {
    const char *indent; /* NULL: single line */
    const char *item_sep, *key_sep;
    bool ensure_ascii, sort_keys;
} jjson_opts;
void jv_write_json(jrender *r, const jnode *at, jbuf *b, jv v, const jjson_opts *o, int level);

/* Strings: code point counts and offsets (Python indexes code points). */
size_t js_cp_len(const char *s, size_t n);
size_t js_cp_offset(const char *s, size_t n, size_t cp_index); /* byte offset of code point */

/* Iteration: a list of the items `for` sees (dict → keys, string → characters). */
jlist *jv_iter_list(jrender *r, const jnode *at, jv v);

/* builtins.c */
jv jb_call_filter(jrender *r, const jnode *at, const char *name, jv self, jargs *a);
bool jb_call_test(jrender *r, const jnode *at, const char *name, jv self, jargs *a);
jv jb_call_func(jrender *r, const jnode *at, jv fn, jargs *a);
jv jb_getattr(jrender *r, const jnode *at, jv obj, const char *name, size_t name_len);
jv jb_getitem(jrender *r, const jnode *at, jv obj, jv key);
bool jb_has_filter(const char *name);
bool jb_has_test(const char *name);
void jb_add_globals(jrender *r, jdict *g);
jv jb_percent_format(jrender *r, const jnode *at, jv fmt, jv args); /* Python str % args */

/* eval.c */
jv je_loop_call(jrender *r, const jnode *at, jloop *l, jargs *a);
jv je_escape(jrender *r, jv v); /* HTML-escapes a plain string into Markup; Markup stays */
jv je_call_macro(jrender *r, const jnode *at, jv m, jargs *a);
void je_step(jrender *r, const jnode *at);

#endif
