/*
 * methods.c — the Python methods templates call on strings, dicts and lists (str.strip,
 * split, startswith, format, ...; dict.items/get; list.index/count), each a small function
 * found by name in its type's table, and the string helpers the filters share (strip,
 * case mapping, split, replace, join) and Python's '%' formatting.
 */
#include "chat/builtins.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
/* ---- string helpers ---- */

static bool jb_in_chars(uint32_t cp, jv chars)
{
    for (size_t i = 0; i < chars.u.s.n;) {
        size_t len;
        if (jinja_utf8_decode(chars.u.s.p + i, chars.u.s.n - i, &len) == cp)
            return true;
        i += len;
    }
    return false;
}

/* Python str.strip/lstrip/rstrip; chars NOT_GIVEN/None → whitespace. */
jv jb_py_strip(jrender *r, jv s, jv chars, bool left, bool right)
{
    bool ws = NOT_GIVEN(chars) || chars.t == JV_NONE || chars.t == JV_UNDEF;
    size_t b = 0, e = s.u.s.n;
    if (left) {
        while (b < e) {
            size_t len;
            uint32_t cp = jinja_utf8_decode(s.u.s.p + b, e - b, &len);
            if (ws ? !jinja_py_isspace(cp) : !jb_in_chars(cp, chars))
                break;
            b += len;
        }
    }
    if (right) {
        while (e > b) {
            size_t st = e - 1;
            while (st > b && ((unsigned char)s.u.s.p[st] & 0xC0) == 0x80 && e - st < 4)
                st--;
            size_t len;
            uint32_t cp = jinja_utf8_decode(s.u.s.p + st, e - st, &len);
            if (st + len != e)
                st = e - 1, cp = (unsigned char)s.u.s.p[e - 1];
            if (ws ? !jinja_py_isspace(cp) : !jb_in_chars(cp, chars))
                break;
            e = st;
        }
    }
    jv v = jv_str(r, s.u.s.p + b, e - b);
    v.markup = s.markup;
    return v;
}

jv jb_map_case(jrender *r, jv s, int mode) /* 0 lower, 1 upper, 2 swap */
{
    char *p = ja_strndup(&r->a, s.u.s.p, s.u.s.n);
    for (size_t i = 0; i < s.u.s.n; i++) {
        char c = p[i];
        bool lo = c >= 'a' && c <= 'z', up = c >= 'A' && c <= 'Z';
        if (up && (mode == 0 || mode == 2))
            p[i] = (char)(c + 32);
        else if (lo && (mode == 1 || mode == 2))
            p[i] = (char)(c - 32);
    }
    jv v = jv_str_nocopy(p, s.u.s.n);
    v.markup = s.markup;
    return v;
}

static bool jb_is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || ((unsigned char)c >= 0x80);
}

/* Python str.title: a letter after a non-letter is upper-cased, other letters lowered. */
jv jb_py_title(jrender *r, jv s)
{
    char *p = ja_strndup(&r->a, s.u.s.p, s.u.s.n);
    bool prev_letter = false;
    for (size_t i = 0; i < s.u.s.n; i++) {
        char c = p[i];
        if (c >= 'a' && c <= 'z' && !prev_letter)
            p[i] = (char)(c - 32);
        else if (c >= 'A' && c <= 'Z' && prev_letter)
            p[i] = (char)(c + 32);
        prev_letter = jb_is_alpha(c);
    }
    return jv_str_nocopy(p, s.u.s.n);
}

jv jb_py_capitalize(jrender *r, jv s)
{
    jv v = jb_map_case(r, s, 0);
    char *p = (char *)v.u.s.p;
    if (v.u.s.n && p[0] >= 'a' && p[0] <= 'z')
        p[0] = (char)(p[0] - 32);
    return v;
}

jv jb_str_replace(jrender *r, jv s, jv old, jv new_, int64_t count)
{
    jbuf b = { 0 };
    size_t i = 0;
    int64_t done = 0;
    if (old.u.s.n == 0) {
        /* Python inserts `new` between characters (and at both ends) */
        jb_put(r, &b, new_.u.s.p, count != 0 ? new_.u.s.n : 0);
        done = 1;
        while (i < s.u.s.n) {
            size_t len;
            jinja_utf8_decode(s.u.s.p + i, s.u.s.n - i, &len);
            jb_put(r, &b, s.u.s.p + i, len);
            i += len;
            if (count < 0 || done < count) {
                jb_put(r, &b, new_.u.s.p, new_.u.s.n);
                done++;
            }
        }
        return jb_take(r, &b);
    }
    while (i < s.u.s.n) {
        const char *hit = (count < 0 || done < count) && s.u.s.n - i >= old.u.s.n
                              ? memmem(s.u.s.p + i, s.u.s.n - i, old.u.s.p, old.u.s.n)
                              : NULL;
        if (!hit) {
            jb_put(r, &b, s.u.s.p + i, s.u.s.n - i);
            break;
        }
        size_t at = (size_t)(hit - s.u.s.p);
        jb_put(r, &b, s.u.s.p + i, at - i);
        jb_put(r, &b, new_.u.s.p, new_.u.s.n);
        i = at + old.u.s.n;
        done++;
    }
    return jb_take(r, &b);
}

jv jb_py_split(jrender *r, const jnode *at, jv s, jv sep, int64_t maxsplit)
{
    jv l = jv_list_new(r, 0);
    const char *p = s.u.s.p;
    size_t n = s.u.s.n, i = 0;
    int64_t splits = 0;
    if (NOT_GIVEN(sep) || sep.t == JV_NONE) {
        for (;;) {
            while (i < n) {
                size_t len;
                if (!jinja_py_isspace(jinja_utf8_decode(p + i, n - i, &len)))
                    break;
                i += len;
            }
            if (i >= n)
                break;
            if (maxsplit >= 0 && splits >= maxsplit) {
                size_t e = n;
                jv rest = jb_py_strip(r, jv_str_nocopy(p + i, e - i), jv_undef(NULL), false, true);
                jv_list_push(r, &l, rest);
                break;
            }
            size_t b = i;
            while (i < n) {
                size_t len;
                if (jinja_py_isspace(jinja_utf8_decode(p + i, n - i, &len)))
                    break;
                i += len;
            }
            jv_list_push(r, &l, jv_str(r, p + b, i - b));
            splits++;
        }
        return l;
    }
    jb_need_str(r, at, "split() separator", sep);
    if (sep.u.s.n == 0)
        jr_fail(r, at, PONDER_ERR_FORMAT, "empty separator");
    for (;;) {
        const char *hit = (maxsplit < 0 || splits < maxsplit) && n - i >= sep.u.s.n
                              ? memmem(p + i, n - i, sep.u.s.p, sep.u.s.n)
                              : NULL;
        if (!hit) {
            jv_list_push(r, &l, jv_str(r, p + i, n - i));
            break;
        }
        size_t e = (size_t)(hit - p);
        jv_list_push(r, &l, jv_str(r, p + i, e - i));
        i = e + sep.u.s.n;
        splits++;
    }
    return l;
}

/* Python str.splitlines (without keepends). */
jv jb_py_splitlines(jrender *r, jv s)
{
    jv l = jv_list_new(r, 0);
    const char *p = s.u.s.p;
    size_t n = s.u.s.n, b = 0, i = 0;
    while (i < n) {
        size_t len;
        uint32_t cp = jinja_utf8_decode(p + i, n - i, &len);
        bool brk = cp == '\n' || cp == '\r' || cp == 0x0B || cp == 0x0C || cp == 0x1C || cp == 0x1D || cp == 0x1E ||
                   cp == 0x85 || cp == 0x2028 || cp == 0x2029;
        if (!brk) {
            i += len;
            continue;
        }
        jv line = jv_str(r, p + b, i - b);
        line.markup = s.markup;
        jv_list_push(r, &l, line);
        i += len;
        if (cp == '\r' && i < n && p[i] == '\n')
            i++;
        b = i;
    }
    if (b < n) {
        jv line = jv_str(r, p + b, n - b);
        line.markup = s.markup;
        jv_list_push(r, &l, line);
    }
    return l;
}

bool jb_affix_match(jv s, jv x, bool end)
{
    if (x.t != JV_STR || x.u.s.n > s.u.s.n)
        return false;
    const char *at = end ? s.u.s.p + s.u.s.n - x.u.s.n : s.u.s.p;
    return memcmp(at, x.u.s.p, x.u.s.n) == 0;
}

jv jb_str_join(jrender *r, jv sep, jlist *items)
{
    jbuf b = { 0 };
    for (size_t i = 0; i < items->n; i++) {
        if (i)
            jb_put(r, &b, sep.u.s.p, sep.u.s.n);
        jv_write_str(r, &b, items->v[i]);
    }
    return jb_take(r, &b);
}

jv jb_dict_items(jrender *r, jv d)
{
    jv l = jv_list_new(r, d.u.d->n);
    for (size_t i = 0; i < d.u.d->n; i++) {
        jv t = jv_list_new(r, 2);
        t.u.l->tuple = true;
        jv_list_push(r, &t, d.u.d->k[i]);
        jv_list_push(r, &t, d.u.d->v[i]);
        jv_list_push(r, &l, t);
    }
    return l;
}

/* ---- printf-style '%' formatting (Python's str % args) ---- */

jv jb_percent_format(jrender *r, const jnode *at, jv fmt, jv args)
{
    jlist *items;
    jv single = args;
    if (args.t == JV_LIST && args.u.l->tuple) {
        items = args.u.l;
    } else {
        jv l = jv_list_new(r, 1);
        jv_list_push(r, &l, single);
        items = l.u.l;
    }
    size_t next = 0;
    jbuf b = { 0 };
    const char *p = fmt.u.s.p, *end = p + fmt.u.s.n;
    while (p < end) {
        if (*p != '%') {
            jb_putc(r, &b, *p++);
            continue;
        }
        p++;
        if (p < end && *p == '%') {
            jb_putc(r, &b, '%');
            p++;
            continue;
        }
        char spec[32];
        size_t sn = 0;
        spec[sn++] = '%';
        while (p < end && strchr("-+ #0", *p) && sn < 8)
            spec[sn++] = *p++;
        while (p < end && *p >= '0' && *p <= '9' && sn < 16)
            spec[sn++] = *p++;
        if (p < end && *p == '.') {
            spec[sn++] = *p++;
            while (p < end && *p >= '0' && *p <= '9' && sn < 24)
                spec[sn++] = *p++;
        }
        if (p >= end)
            jr_fail(r, at, PONDER_ERR_FORMAT, "incomplete format");
        char conv = *p++;
        if (next >= items->n)
            jr_fail(r, at, PONDER_ERR_FORMAT, "not enough arguments for format string");
        jv x = items->v[next++];
        char out[512];
        switch (conv) {
        case 's':
        case 'r': {
            jbuf t = { 0 };
            if (conv == 's')
                jv_write_str(r, &t, x);
            else
                jv_write_repr(r, &t, x);
            spec[sn++] = 's';
            spec[sn] = 0;
            if (sn == 2) {
                jb_put(r, &b, t.p ? t.p : "", t.n);
            } else {
                char *o = ja_alloc(&r->a, t.n + 1024);
                snprintf(o, t.n + 1024, spec, t.p ? t.p : "");
                jb_puts(r, &b, o);
            }
            break;
        }
        case 'd':
        case 'i':
        case 'x':
        case 'X':
        case 'o':
            if (!jv_is_number(x))
                jr_fail(r, at, PONDER_ERR_FORMAT, "%%%c format: a number is required, not %s", conv, jv_type_name(x));
            spec[sn++] = 'l';
            spec[sn++] = 'l';
            spec[sn++] = conv == 'i' ? 'd' : conv;
            spec[sn] = 0;
            snprintf(out, sizeof out, spec, (long long)(x.t == JV_FLOAT ? (int64_t)x.u.f : x.t == JV_INT ? x.u.i : x.u.b));
            jb_puts(r, &b, out);
            break;
        case 'f':
        case 'F':
        case 'e':
        case 'E':
        case 'g':
        case 'G':
            if (!jv_is_number(x))
                jr_fail(r, at, PONDER_ERR_FORMAT, "must be real number, not %s", jv_type_name(x));
            spec[sn++] = conv;
            spec[sn] = 0;
            snprintf(out, sizeof out, spec, jv_as_double(x));
            jb_puts(r, &b, out);
            break;
        default: jr_fail(r, at, PONDER_ERR_UNSUPPORTED, "unsupported format character '%c'", conv);
        }
    }
    if (next < items->n && args.t == JV_LIST && args.u.l->tuple)
        jr_fail(r, at, PONDER_ERR_FORMAT, "not all arguments converted during string formatting");
    return jb_take(r, &b);
}

/* str.format with {} / {N} / {name} fields and no format specs */
static jv py_format(jrender *r, const jnode *at, jv fmt, jargs *a)
{
    jbuf b = { 0 };
    size_t auto_idx = 0;
    const char *p = fmt.u.s.p, *end = p + fmt.u.s.n;
    while (p < end) {
        if (*p == '{' && p + 1 < end && p[1] == '{') {
            jb_putc(r, &b, '{');
            p += 2;
        } else if (*p == '}' && p + 1 < end && p[1] == '}') {
            jb_putc(r, &b, '}');
            p += 2;
        } else if (*p == '{') {
            const char *close = memchr(p, '}', (size_t)(end - p));
            if (!close)
                jr_fail(r, at, PONDER_ERR_FORMAT, "Single '{' encountered in format string");
            const char *f = p + 1;
            size_t n = (size_t)(close - f);
            if (memchr(f, ':', n) || memchr(f, '!', n))
                jr_fail(r, at, PONDER_ERR_UNSUPPORTED, "format specs in str.format are not supported");
            jv x;
            if (n == 0) {
                if (auto_idx >= a->n_pos)
                    jr_fail(r, at, PONDER_ERR_FORMAT, "Replacement index %zu out of range", auto_idx);
                x = a->pos[auto_idx++];
            } else if (f[0] >= '0' && f[0] <= '9') {
                size_t idx = (size_t)strtoul(f, NULL, 10);
                if (idx >= a->n_pos)
                    jr_fail(r, at, PONDER_ERR_FORMAT, "Replacement index %zu out of range", idx);
                x = a->pos[idx];
            } else {
                size_t k = 0;
                while (k < a->n_kw && !(strlen(a->kw_names[k]) == n && !memcmp(a->kw_names[k], f, n)))
                    k++;
                if (k == a->n_kw)
                    jr_fail(r, at, PONDER_ERR_FORMAT, "KeyError: '%.*s'", (int)n, f);
                x = a->kw[k];
            }
            jv_write_str(r, &b, x);
            p = close + 1;
        } else {
            jb_putc(r, &b, *p++);
        }
    }
    return jb_take(r, &b);
}
/* ---- methods ---- */

/* str.strip, lstrip, rstrip */
static jv sm_strip(jrender *r, const jnode *at, const char *m, jv s, jargs *a)
{
    BIND(m, "chars");
    return jb_py_strip(r, s, arg[0], m[0] != 'r', m[0] != 'l');
}

/* str.split, rsplit (rsplit with a limit: split fully, then rejoin the leading parts) */
static jv sm_split(jrender *r, const jnode *at, const char *m, jv s, jargs *a)
{
    BIND(m, "sep", "maxsplit");
    int64_t maxsplit = NOT_GIVEN(arg[1]) ? -1 : jb_need_int(r, at, "maxsplit", arg[1]);
    if (m[0] == 'r' && maxsplit >= 0) {
        /* rsplit with a limit: split fully, then rejoin the leading parts */
        jv parts = jb_py_split(r, at, s, arg[0], -1);
        jlist *l = parts.u.l;
        if ((int64_t)l->n <= maxsplit + 1)
            return parts;
        size_t head = l->n - (size_t)maxsplit;
        jv sep = NOT_GIVEN(arg[0]) || arg[0].t == JV_NONE ? jv_str_nocopy(" ", 1) : arg[0];
        jv first = jv_list_new(r, head);
        for (size_t i = 0; i < head; i++)
            jv_list_push(r, &first, l->v[i]);
        jv out = jv_list_new(r, (size_t)maxsplit + 1);
        jv_list_push(r, &out, jb_str_join(r, sep, first.u.l));
        for (size_t i = head; i < l->n; i++)
            jv_list_push(r, &out, l->v[i]);
        return out;
    }
    return jb_py_split(r, at, s, arg[0], maxsplit);
}

/* str.splitlines */
static jv sm_splitlines(jrender *r, const jnode *at, const char *m, jv s, jargs *a)
{
    jb_no_args(r, at, m, a);
    return jb_py_splitlines(r, s);
}

/* str.startswith, endswith (a tuple of affixes; start/end as code-point slices) */
static jv sm_affix(jrender *r, const jnode *at, const char *m, jv s, jargs *a)
{
    BIND(m, "prefix", "start", "end");
    bool end = m[0] == 'e';
    jv sub = s;
    if (!NOT_GIVEN(arg[1]) || !NOT_GIVEN(arg[2])) {
        jv sl = jv_list_new(r, 0);
        (void)sl;
        int64_t n = (int64_t)js_cp_len(s.u.s.p, s.u.s.n);
        int64_t b = NOT_GIVEN(arg[1]) || arg[1].t == JV_NONE ? 0 : jb_need_int(r, at, "start", arg[1]);
        int64_t e = NOT_GIVEN(arg[2]) || arg[2].t == JV_NONE ? n : jb_need_int(r, at, "end", arg[2]);
        if (b < 0) b += n;
        if (e < 0) e += n;
        if (b < 0) b = 0;
        if (e > n) e = n;
        if (b > e)
            return jv_bool(false);
        size_t ob = js_cp_offset(s.u.s.p, s.u.s.n, (size_t)b), oe = js_cp_offset(s.u.s.p, s.u.s.n, (size_t)e);
        sub = jv_str(r, s.u.s.p + ob, oe - ob);
    }
    if (arg[0].t == JV_LIST) {
        for (size_t i = 0; i < arg[0].u.l->n; i++)
            if (jb_affix_match(sub, arg[0].u.l->v[i], end))
                return jv_bool(true);
        return jv_bool(false);
    }
    jb_need_str(r, at, m, arg[0]);
    return jv_bool(jb_affix_match(sub, arg[0], end));
}

/* str.upper, lower, swapcase, casefold (ASCII) */
static jv sm_case(jrender *r, const jnode *at, const char *m, jv s, jargs *a)
{
    jb_no_args(r, at, m, a);
    return jb_map_case(r, s, m[0] == 'u' ? 1 : m[0] == 's' ? 2 : 0);
}

/* str.title */
static jv sm_title(jrender *r, const jnode *at, const char *m, jv s, jargs *a)
{
    jb_no_args(r, at, m, a);
    return jb_py_title(r, s);
}

/* str.capitalize */
static jv sm_capitalize(jrender *r, const jnode *at, const char *m, jv s, jargs *a)
{
    jb_no_args(r, at, m, a);
    return jb_py_capitalize(r, s);
}

/* str.replace */
static jv sm_replace(jrender *r, const jnode *at, const char *m, jv s, jargs *a)
{
    BIND(m, "old", "new", "count");
    int64_t count = NOT_GIVEN(arg[2]) ? -1 : jb_need_int(r, at, "count", arg[2]);
    return jb_str_replace(r, s, jb_need_str(r, at, "replace() old", arg[0]), jb_need_str(r, at, "replace() new", arg[1]),
                       count);
}

/* str.find, rfind, index, count (code-point offsets) */
static jv sm_find(jrender *r, const jnode *at, const char *m, jv s, jargs *a)
{
    BIND(m, "sub");
    jv sub = jb_need_str(r, at, m, arg[0]);
    int64_t found = -1, count = 0;
    for (size_t i = 0; i + sub.u.s.n <= s.u.s.n;) {
        if (memcmp(s.u.s.p + i, sub.u.s.p, sub.u.s.n) == 0) {
            if (found < 0 || m[0] == 'r')
                found = (int64_t)js_cp_len(s.u.s.p, i);
            count++;
            i += sub.u.s.n ? sub.u.s.n : 1;
            if (m[0] == 'f' || m[0] == 'i')
                break;
        } else {
            i++;
        }
    }
    if (m[0] == 'c')
        return jv_int(sub.u.s.n ? count : (int64_t)js_cp_len(s.u.s.p, s.u.s.n) + 1);
    if (m[0] == 'i' && found < 0)
        jr_fail(r, at, PONDER_ERR_FORMAT, "substring not found");
    return jv_int(found);
}

/* str.join */
static jv sm_join(jrender *r, const jnode *at, const char *m, jv s, jargs *a)
{
    BIND(m, "iterable");
    jlist *items = jv_iter_list(r, at, arg[0]);
    for (size_t i = 0; i < items->n; i++)
        if (items->v[i].t != JV_STR)
            jr_fail(r, at, PONDER_ERR_FORMAT, "sequence item %zu: expected str instance, %s found", i,
                    jv_type_name(items->v[i]));
    return jb_str_join(r, s, items);
}

/* str.isdigit, isnumeric, isdecimal, isalpha, isalnum, isspace, isupper, islower, istitle (ASCII) */
static jv sm_is(jrender *r, const jnode *at, const char *m, jv s, jargs *a)
{
    jb_no_args(r, at, m, a);
    if (s.u.s.n == 0)
        return jv_bool(false);
    bool ok = true, cased = false, prev_cased = false, title_ok = true;
    for (size_t i = 0; i < s.u.s.n && ok; i++) {
        char c = s.u.s.p[i];
        bool d = c >= '0' && c <= '9', lo = c >= 'a' && c <= 'z', up = c >= 'A' && c <= 'Z';
        if (!strcmp(m, "isdigit") || !strcmp(m, "isnumeric") || !strcmp(m, "isdecimal"))
            ok = d;
        else if (!strcmp(m, "isalpha"))
            ok = lo || up;
        else if (!strcmp(m, "isalnum"))
            ok = lo || up || d;
        else if (!strcmp(m, "isspace"))
            ok = jinja_py_isspace((unsigned char)c);
        else if (!strcmp(m, "isupper"))
            ok = !lo, cased |= up;
        else if (!strcmp(m, "islower"))
            ok = !up, cased |= lo;
        else if (!strcmp(m, "istitle")) {
            if (up && prev_cased)
                title_ok = false;
            if (lo && !prev_cased)
                title_ok = false;
            cased |= up;
            prev_cased = up || lo;
        }
    }
    if (!strcmp(m, "isupper") || !strcmp(m, "islower"))
        ok = ok && cased;
    if (!strcmp(m, "istitle"))
        ok = title_ok && cased;
    return jv_bool(ok);
}

/* str.format */
static jv sm_format(jrender *r, const jnode *at, const char *m, jv s, jargs *a)
{
    (void)m;
    return py_format(r, at, s, a);
}

/* str.center, ljust, rjust, zfill */
static jv sm_pad(jrender *r, const jnode *at, const char *m, jv s, jargs *a)
{
    BIND(m, "width", "fillchar");
    int64_t w = jb_need_int(r, at, "width", arg[0]);
    jv fill = NOT_GIVEN(arg[1]) ? jv_str_nocopy(m[0] == 'z' ? "0" : " ", 1) : jb_need_str(r, at, "fillchar", arg[1]);
    int64_t len = (int64_t)js_cp_len(s.u.s.p, s.u.s.n);
    if (w <= len || w > 100000)
        return s;
    int64_t pad = w - len, left = m[0] == 'c' ? pad / 2 + (pad & w & 1) : m[0] == 'l' ? 0 : pad;
    jbuf b = { 0 };
    for (int64_t i = 0; i < left; i++)
        jb_put(r, &b, fill.u.s.p, fill.u.s.n);
    jb_put(r, &b, s.u.s.p, s.u.s.n);
    for (int64_t i = 0; i < pad - left; i++)
        jb_put(r, &b, fill.u.s.p, fill.u.s.n);
    return jb_take(r, &b);
}

/* str.removeprefix, removesuffix */
static jv sm_removeaffix(jrender *r, const jnode *at, const char *m, jv s, jargs *a)
{
    BIND(m, "affix");
    jv x = jb_need_str(r, at, m, arg[0]);
    bool end = m[6] == 's';
    if (!jb_affix_match(s, x, end))
        return s;
    return end ? jv_str(r, s.u.s.p, s.u.s.n - x.u.s.n) : jv_str(r, s.u.s.p + x.u.s.n, s.u.s.n - x.u.s.n);
}

/* str.partition, rpartition */
static jv sm_partition(jrender *r, const jnode *at, const char *m, jv s, jargs *a)
{
    BIND(m, "sep");
    jv sep = jb_need_str(r, at, m, arg[0]);
    if (sep.u.s.n == 0)
        jr_fail(r, at, PONDER_ERR_FORMAT, "empty separator");
    const char *hit = NULL;
    for (size_t i = 0; i + sep.u.s.n <= s.u.s.n; i++)
        if (!memcmp(s.u.s.p + i, sep.u.s.p, sep.u.s.n)) {
            hit = s.u.s.p + i;
            if (m[0] == 'p')
                break;
        }
    jv t = jv_list_new(r, 3);
    t.u.l->tuple = true;
    if (!hit) {
        jv e = jv_str_nocopy("", 0);
        jv_list_push(r, &t, m[0] == 'p' ? s : e);
        jv_list_push(r, &t, e);
        jv_list_push(r, &t, m[0] == 'p' ? e : s);
        return t;
    }
    size_t off = (size_t)(hit - s.u.s.p);
    jv_list_push(r, &t, jv_str(r, s.u.s.p, off));
    jv_list_push(r, &t, sep);
    jv_list_push(r, &t, jv_str(r, hit + sep.u.s.n, s.u.s.n - off - sep.u.s.n));
    return t;
}

/* str.expandtabs (tab stops of 8 as one replacement) */
static jv sm_expandtabs(jrender *r, const jnode *at, const char *m, jv s, jargs *a)
{
    jb_no_args(r, at, m, a);
    return jb_str_replace(r, s, jv_str_nocopy("\t", 1), jv_str_nocopy("        ", 8), -1);
}

/* str methods by name (jinja2's sandbox allows these; mutating ones are refused by the
 * caller). To add one: a function above and a row here. */
static const struct {
    const char *name;
    jv (*fn)(jrender *r, const jnode *at, const char *m, jv s, jargs *a);
} str_methods[] = {
    { "strip", sm_strip },
    { "lstrip", sm_strip },
    { "rstrip", sm_strip },
    { "split", sm_split },
    { "rsplit", sm_split },
    { "splitlines", sm_splitlines },
    { "startswith", sm_affix },
    { "endswith", sm_affix },
    { "upper", sm_case },
    { "lower", sm_case },
    { "swapcase", sm_case },
    { "casefold", sm_case },
    { "title", sm_title },
    { "capitalize", sm_capitalize },
    { "replace", sm_replace },
    { "find", sm_find },
    { "rfind", sm_find },
    { "index", sm_find },
    { "count", sm_find },
    { "join", sm_join },
    { "isdigit", sm_is },
    { "isalpha", sm_is },
    { "isalnum", sm_is },
    { "isspace", sm_is },
    { "isupper", sm_is },
    { "islower", sm_is },
    { "isnumeric", sm_is },
    { "isdecimal", sm_is },
    { "istitle", sm_is },
    { "format", sm_format },
    { "center", sm_pad },
    { "ljust", sm_pad },
    { "rjust", sm_pad },
    { "zfill", sm_pad },
    { "removeprefix", sm_removeaffix },
    { "removesuffix", sm_removeaffix },
    { "partition", sm_partition },
    { "rpartition", sm_partition },
    { "expandtabs", sm_expandtabs },
};

bool jb_is_str_method(const char *name, size_t n)
{
    for (size_t i = 0; i < sizeof str_methods / sizeof str_methods[0]; i++)
        if (strlen(str_methods[i].name) == n && memcmp(str_methods[i].name, name, n) == 0)
            return true;
    return false;
}

jv jb_str_method(jrender *r, const jnode *at, const char *m, jv s, jargs *a)
{
    for (size_t i = 0; i < sizeof str_methods / sizeof str_methods[0]; i++)
        if (strcmp(str_methods[i].name, m) == 0)
            return str_methods[i].fn(r, at, m, s, a);
    jr_fail(r, at, PONDER_ERR_UNSUPPORTED, "unsupported str method '%s'", m);
}

jv jb_dict_method(jrender *r, const jnode *at, const char *m, jv d, jargs *a)
{
    if (!strcmp(m, "items")) {
        jb_no_args(r, at, m, a);
        return jb_dict_items(r, d);
    }
    if (!strcmp(m, "keys") || !strcmp(m, "values")) {
        jb_no_args(r, at, m, a);
        jv l = jv_list_new(r, d.u.d->n);
        for (size_t i = 0; i < d.u.d->n; i++)
            jv_list_push(r, &l, m[0] == 'k' ? d.u.d->k[i] : d.u.d->v[i]);
        return l;
    }
    if (!strcmp(m, "get")) {
        BIND(m, "key", "default");
        jv v;
        if (jv_dict_get(d.u.d, arg[0], &v))
            return v;
        return NOT_GIVEN(arg[1]) ? jv_none() : arg[1];
    }
    if (!strcmp(m, "copy")) {
        jb_no_args(r, at, m, a);
        jv c = jv_dict_new(r);
        for (size_t i = 0; i < d.u.d->n; i++)
            jv_dict_set(r, c.u.d, d.u.d->k[i], d.u.d->v[i]);
        return c;
    }
    jr_fail(r, at, PONDER_ERR_UNSUPPORTED, "unsupported dict method '%s'", m);
}

jv jb_list_method(jrender *r, const jnode *at, const char *m, jv l, jargs *a)
{
    if (!strcmp(m, "index") || !strcmp(m, "count")) {
        BIND(m, "value");
        int64_t count = 0;
        for (size_t i = 0; i < l.u.l->n; i++)
            if (jv_equal(l.u.l->v[i], arg[0])) {
                if (m[0] == 'i')
                    return jv_int((int64_t)i);
                count++;
            }
        if (m[0] == 'i')
            jr_fail(r, at, PONDER_ERR_FORMAT, "value is not in list");
        return jv_int(count);
    }
    if (!strcmp(m, "copy")) {
        jb_no_args(r, at, m, a);
        jv c = jv_list_new(r, l.u.l->n);
        for (size_t i = 0; i < l.u.l->n; i++)
            jv_list_push(r, &c, l.u.l->v[i]);
        return c;
    }
    jr_fail(r, at, PONDER_ERR_UNSUPPORTED, "unsupported list method '%s'", m);
}
