/*
 * json_schema_internal.h — the JSON Schema compiler's state and helpers, shared by
 * json_schema.c (keywords, objects, references, dispatch) and json_schema_scalar.c
 * (arrays, strings, numbers).
 */
#ifndef PONDER_JSON_SCHEMA_INTERNAL_H
#define PONDER_JSON_SCHEMA_INTERNAL_H

#include "grammar/schema_parts.h"

#include <jansson.h>

typedef struct js_ref {
    char *ref, *rule;
} js_ref;

typedef struct js {
    json_t *root;
    gr_buf rules;
    char **names;
    size_t n_names, cap_names;
    js_ref *refs;
    size_t n_refs, cap_refs;
    ponder_status st;
    ponder_error *err;
    int depth;
} js;

/* Fails the compile (first failure wins) with "JSON Schema: <fmt % arg> at <path>";
 * returns NULL. */
char *js_fail(js *j, ponder_status code, const char *path, const char *fmt, const char *arg);
/* Defines a rule from hint with body; returns its name (malloc'ed), NULL when out of memory. */
char *js_add_rule(js *j, const char *hint, const char *body);
/* Compiles s (at path/a[/b]) into a rule; returns its name (malloc'ed) or NULL. */
char *js_visit_child(js *j, json_t *s, const char *hint, const char *path, const char *a, const char *b);
bool js_in_list(const char *k, const char *const *list, size_t n);

char *js_build_array(js *j, json_t *s, const char *hint, const char *path);
char *js_build_string(js *j, json_t *s, const char *hint, const char *path);
char *js_build_integer(js *j, json_t *s, const char *hint, const char *path);
char *js_build_number(js *j, json_t *s, const char *hint, const char *path);

#endif /* PONDER_JSON_SCHEMA_INTERNAL_H */
