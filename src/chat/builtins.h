/*
 * builtins.h — what the built-ins' three files share. builtins.c: binding a call's
 * arguments, attribute and item lookup, the globals and calls; methods.c: the Python
 * methods templates call on strings, dicts and lists (name → function tables), the string
 * helpers, and '%' / str.format formatting; filters.c: jinja2's tests and filters (tables
 * too) and the stable sort behind sort/dictsort/unique.
 */
#ifndef PONDER_CHAT_BUILTINS_H
#define PONDER_CHAT_BUILTINS_H

#include "chat/eval.h"

#define NOT_GIVEN(v) ((v).t == JV_UNDEF && (v).u.s.p == NULL)

/* Binds positional and keyword arguments to names[0..n); absent ones are NOT_GIVEN. */
void jb_bind(jrender *r, const jnode *at, const char *fname, const jargs *a, const char *const *names, size_t n, jv *out);
void jb_no_args(jrender *r, const jnode *at, const char *fname, const jargs *a);
jv jb_need_str(jrender *r, const jnode *at, const char *what, jv v);
int64_t jb_need_int(jrender *r, const jnode *at, const char *what, jv v);
jv jb_str_or_empty(jrender *r, jv v);
/* Python str.strip/lstrip/rstrip; chars NOT_GIVEN/None → whitespace. */
jv jb_map_case(jrender *r, jv s, int mode); /* 0 lower, 1 upper, 2 swap */
/* Python str.strip/lstrip/rstrip; chars NOT_GIVEN/None → whitespace. */
jv jb_py_strip(jrender *r, jv s, jv chars, bool left, bool right);
/* Python str.title: a letter after a non-letter is upper-cased, other letters lowered. */
jv jb_py_title(jrender *r, jv s);
jv jb_py_capitalize(jrender *r, jv s);
jv jb_str_replace(jrender *r, jv s, jv old, jv new_, int64_t count);
jv jb_py_split(jrender *r, const jnode *at, jv s, jv sep, int64_t maxsplit);
/* Python str.splitlines (without keepends). */
jv jb_py_splitlines(jrender *r, jv s);
bool jb_affix_match(jv s, jv x, bool end);
jv jb_str_join(jrender *r, jv sep, jlist *items);
/* jinja2's make_attrgetter: "a.b.0" walks items/attributes, integers as indexes. */
jv jb_attr_path(jrender *r, const jnode *at, jv v, jv path);
jv jb_dict_items(jrender *r, jv d);

/* Declares jv arg[] holding a call's arguments bound to the names given (absent:
 * NOT_GIVEN); needs r, at and a in scope. */
#define BIND(fname, ...)                                                              \
    static const char *const bind_names_[] = { __VA_ARGS__ };                         \
    jv arg[sizeof bind_names_ / sizeof bind_names_[0]];                               \
    jb_bind(r, at, fname, a, bind_names_, sizeof bind_names_ / sizeof bind_names_[0], arg)

/* A method of a value (the name was checked against the type's list by jb_getattr). */
bool jb_is_str_method(const char *name, size_t n);
jv jb_str_method(jrender *r, const jnode *at, const char *m, jv s, jargs *a);
jv jb_dict_method(jrender *r, const jnode *at, const char *m, jv d, jargs *a);
jv jb_list_method(jrender *r, const jnode *at, const char *m, jv l, jargs *a);

#endif
