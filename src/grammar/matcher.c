/*
 * matcher.c — the incremental grammar matcher and its token masks.
 *
 * State: a set of parse stacks, as in llama.cpp's llama_grammar_accept. A stack is a
 * chain of interned nodes (position, DFA state, parent): the top node sits on a
 * character class (possibly part-way through a multi-byte character), the nodes below
 * are where each enclosing rule continues. Node 0 is the empty stack: in a state it
 * means the grammar is complete. Because nodes are interned, a stack is one id and a
 * state is an interned sorted set of ids, so a byte transition (set, byte) → set is
 * computed once and memoised; inside a JSON string every further character is one hash
 * lookup.
 *
 * A mask is one pass over the vocabulary sorted by bytes (vocab.c): the state after each
 * prefix is kept per depth, so a token sharing k bytes with the previous one resumes at
 * depth k, and a prefix that dies skips every token starting with it. Masks are cached
 * per state: a state repeats whenever the grammar loops (string characters, digits,
 * whitespace), and then the mask costs one lookup. Clones share all of this (the "core"),
 * so n choices of one request and a draft's look-ahead warm one cache.
 */
#include "grammar/grammar_vocab.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define GR_MAX_DEPTH 4096          /* stack depth beyond which a path is dropped */
#define GR_MAX_NODES (1u << 23)    /* interned stacks per core before it refuses to grow */
#define GR_MASK_CACHE 256          /* cached masks per core (each n_vocab bits) */
#define GR_ENDED UINT32_MAX        /* history entry after an end-of-generation token */
#define GR_DENSE_ROWS 16384        /* sets with a 256-entry transition row (1 KiB each) */
#define GR_UNKNOWN UINT32_MAX      /* a dense row's entry not computed yet */
#define GR_FAR (INT32_MAX / 4)     /* bytes to complete: cannot complete (and the sum cap) */

typedef struct u64map {
    uint64_t *keys; /* UINT64_MAX: empty */
    uint32_t *vals;
    uint32_t cap, n; /* cap: power of two */
} u64map;

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static bool map_get(const u64map *m, uint64_t key, uint32_t *val)
{
    if (m->cap == 0)
        return false;
    for (uint32_t i = (uint32_t)mix64(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == key) {
            *val = m->vals[i];
            return true;
        }
        if (m->keys[i] == UINT64_MAX)
            return false;
    }
}

static bool map_put(u64map *m, uint64_t key, uint32_t val)
{
    if ((m->n + 1) * 4 > m->cap * 3) {
        uint32_t cap = m->cap ? m->cap * 2 : 1024;
        uint64_t *k = malloc((size_t)cap * sizeof *k);
        uint32_t *v = malloc((size_t)cap * sizeof *v);
        if (!k || !v) {
            free(k);
            free(v);
            return false;
        }
        memset(k, 0xFF, (size_t)cap * sizeof *k);
        for (uint32_t i = 0; i < m->cap; i++) {
            if (m->keys[i] == UINT64_MAX)
                continue;
            uint32_t j = (uint32_t)mix64(m->keys[i]) & (cap - 1);
            while (k[j] != UINT64_MAX)
                j = (j + 1) & (cap - 1);
            k[j] = m->keys[i];
            v[j] = m->vals[i];
        }
        free(m->keys);
        free(m->vals);
        m->keys = k;
        m->vals = v;
        m->cap = cap;
    }
    uint32_t i = (uint32_t)mix64(key) & (m->cap - 1);
    while (m->keys[i] != UINT64_MAX && m->keys[i] != key)
        i = (i + 1) & (m->cap - 1);
    if (m->keys[i] == UINT64_MAX)
        m->n++;
    m->keys[i] = key;
    m->vals[i] = val;
    return true;
}

static void map_clear(u64map *m)
{
    if (m->cap)
        memset(m->keys, 0xFF, (size_t)m->cap * sizeof *m->keys);
    m->n = 0;
}

static void map_free(u64map *m)
{
    free(m->keys);
    free(m->vals);
}

typedef struct gr_core {
    const ponder_grammar *g;
    const ponder_grammar_vocab *v;
    int refs;
    bool oom;
    /* interned stack nodes; node 0 = the empty stack */
    uint32_t *node_pos, *node_dfa, *node_parent, *node_depth;
    uint32_t n_nodes, cap_nodes;
    u64map node_map;
    /* interned sets of nodes (sorted); set 0 = the empty set (a dead state) */
    uint32_t *set_off, *set_len;
    uint32_t n_sets, cap_sets;
    uint32_t *items;
    size_t n_items, cap_items;
    u64map set_map; /* content hash → set id (collisions chained through set_next) */
    uint32_t *set_next;
    u64map trans;   /* set << 8 | byte → set */
    uint32_t **dense; /* per set: 256 next sets (GR_UNKNOWN until computed), or NULL;
                         the mask walk's hot path, a load instead of a hash probe */
    uint32_t cap_dense, n_dense_rows;
    /* masks */
    uint32_t words;
    u64map mask_map; /* set → slot */
    uint32_t *masks; /* GR_MASK_CACHE slots of words */
    uint32_t n_masks;
    uint32_t *zero_mask;
    int32_t *mask_far;   /* per slot: the largest bytes-to-complete a token of the mask leads to */
    uint32_t *budget_mask; /* scratch for ponder_grammar_matcher_mask_within */
    /* bytes to complete (GR_FAR: never), for the budget: per DFA state to finish its
     * character, per position to the end of its alternative, per node and set (lazily,
     * -1 until computed) */
    int32_t *dfa_min, *pos_min, *node_min, *set_min;
    uint32_t cap_node_min, cap_set_min;
    /* scratch */
    uint32_t *buf;
    uint32_t n_buf, cap_buf;
    uint32_t *depth_set; /* per prefix length during a mask walk */
} gr_core;

struct ponder_grammar_matcher {
    gr_core *c;
    uint32_t *hist; /* hist[0]: the start state; hist[n_hist - 1]: now */
    int32_t n_hist, cap_hist;
};

static void buf_push(gr_core *c, uint32_t x)
{
    if (c->n_buf == c->cap_buf) {
        uint32_t cap = c->cap_buf ? c->cap_buf * 2 : 64;
        uint32_t *b = realloc(c->buf, cap * sizeof *b);
        if (!b) {
            c->oom = true;
            return;
        }
        c->buf = b;
        c->cap_buf = cap;
    }
    c->buf[c->n_buf++] = x;
}

/* The node (pos, dfa, parent); UINT32_MAX when too deep or out of memory. */
static uint32_t intern_node(gr_core *c, uint32_t pos, uint32_t dfa, uint32_t parent)
{
    const uint64_t key = (uint64_t)pos << 40 | (uint64_t)dfa << 24 | parent;
    uint32_t id;
    if (map_get(&c->node_map, key, &id))
        return id;
    const uint32_t depth = c->node_depth[parent] + 1;
    if (depth > GR_MAX_DEPTH || c->n_nodes >= GR_MAX_NODES)
        return UINT32_MAX;
    if (c->n_nodes == c->cap_nodes) {
        uint32_t cap = c->cap_nodes * 2;
        uint32_t *a = realloc(c->node_pos, cap * sizeof *a);
        if (a)
            c->node_pos = a;
        uint32_t *b = realloc(c->node_dfa, cap * sizeof *b);
        if (b)
            c->node_dfa = b;
        uint32_t *p = realloc(c->node_parent, cap * sizeof *p);
        if (p)
            c->node_parent = p;
        uint32_t *d = realloc(c->node_depth, cap * sizeof *d);
        if (d)
            c->node_depth = d;
        if (!a || !b || !p || !d) {
            c->oom = true;
            return UINT32_MAX;
        }
        c->cap_nodes = cap;
    }
    id = c->n_nodes;
    if (!map_put(&c->node_map, key, id)) {
        c->oom = true;
        return UINT32_MAX;
    }
    c->node_pos[id] = pos;
    c->node_dfa[id] = dfa;
    c->node_parent[id] = parent;
    c->node_depth[id] = depth;
    c->n_nodes++;
    return id;
}

/* Pushes onto buf the stacks reached from position pos (with parent below it) once
 * every rule reference at the top is expanded: tops on a character class, or the empty
 * stack. Recursion follows rule references only, bounded since no rule is left-recursive;
 * finished rules pop in the loop. */
static void expand(gr_core *c, uint32_t pos, uint32_t parent)
{
    const ponder_grammar *g = c->g;
    for (;;) {
        const gr_elem e = g->elems[pos];
        if (e.kind == GR_END) {
            if (parent == 0) {
                buf_push(c, 0);
                return;
            }
            pos = c->node_pos[parent];
            parent = c->node_parent[parent];
            continue;
        }
        if (e.kind == GR_CLASS) {
            uint32_t n = intern_node(c, pos, e.arg, parent);
            if (n != UINT32_MAX)
                buf_push(c, n);
            return;
        }
        uint32_t cont = parent;
        if (g->elems[pos + 1].kind != GR_END) {
            cont = intern_node(c, pos + 1, 0, parent);
            if (cont == UINT32_MAX)
                return;
        }
        for (uint32_t a = g->rule_alt[e.arg]; a < g->rule_alt[e.arg + 1]; a++)
            expand(c, g->alts[a], cont);
        return;
    }
}

static int u32_cmp(const void *a, const void *b)
{
    const uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* The set of buf[0..n_buf) (sorted and deduplicated here); UINT32_MAX on failure. */
static uint32_t intern_set(gr_core *c)
{
    uint32_t n = c->n_buf;
    if (n > 1) {
        qsort(c->buf, n, sizeof *c->buf, u32_cmp);
        uint32_t w = 1;
        for (uint32_t i = 1; i < n; i++)
            if (c->buf[i] != c->buf[w - 1])
                c->buf[w++] = c->buf[i];
        n = w;
    }
    if (n == 0)
        return 0;
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ n;
    for (uint32_t i = 0; i < n; i++)
        h = mix64(h ^ c->buf[i]);
    h &= ~(1ULL << 63); /* never UINT64_MAX */
    uint32_t id;
    if (map_get(&c->set_map, h, &id)) {
        for (; id != UINT32_MAX; id = c->set_next[id])
            if (c->set_len[id] == n && memcmp(c->items + c->set_off[id], c->buf, n * sizeof *c->buf) == 0)
                return id;
    }
    if (c->n_sets == c->cap_sets) {
        uint32_t cap = c->cap_sets * 2;
        uint32_t *o = realloc(c->set_off, cap * sizeof *o);
        if (o)
            c->set_off = o;
        uint32_t *l = realloc(c->set_len, cap * sizeof *l);
        if (l)
            c->set_len = l;
        uint32_t *nx = realloc(c->set_next, cap * sizeof *nx);
        if (nx)
            c->set_next = nx;
        if (!o || !l || !nx)
            return c->oom = true, UINT32_MAX;
        c->cap_sets = cap;
    }
    if (c->n_items + n > c->cap_items) {
        size_t cap = c->cap_items * 2;
        while (cap < c->n_items + n)
            cap *= 2;
        uint32_t *it = realloc(c->items, cap * sizeof *it);
        if (!it)
            return c->oom = true, UINT32_MAX;
        c->items = it;
        c->cap_items = cap;
    }
    id = c->n_sets;
    uint32_t head = UINT32_MAX;
    if (!map_get(&c->set_map, h, &head))
        head = UINT32_MAX;
    if (!map_put(&c->set_map, h, id))
        return c->oom = true, UINT32_MAX;
    c->set_next[id] = head;
    c->set_off[id] = (uint32_t)c->n_items;
    c->set_len[id] = n;
    memcpy(c->items + c->n_items, c->buf, n * sizeof *c->buf);
    c->n_items += n;
    c->n_sets++;
    return id;
}

/* The state after byte b from set s (0: dead). */
static uint32_t step(gr_core *c, uint32_t s, unsigned char b)
{
    if (s == 0)
        return 0;
    const uint64_t key = (uint64_t)s << 8 | b;
    uint32_t r;
    if (map_get(&c->trans, key, &r))
        return r;
    const ponder_grammar *g = c->g;
    c->n_buf = 0;
    const uint32_t off = c->set_off[s], len = c->set_len[s];
    for (uint32_t i = 0; i < len; i++) {
        const uint32_t nd = c->items[off + i];
        if (nd == 0)
            continue;
        const uint32_t nx = g->dfa[(size_t)c->node_dfa[nd] * 256 + b];
        if (nx == GR_DFA_DEAD)
            continue;
        if (nx == GR_DFA_ACCEPT) {
            expand(c, c->node_pos[nd] + 1, c->node_parent[nd]);
        } else {
            uint32_t m = intern_node(c, c->node_pos[nd], nx, c->node_parent[nd]);
            if (m != UINT32_MAX)
                buf_push(c, m);
        }
    }
    r = c->oom ? UINT32_MAX : intern_set(c);
    if (r == UINT32_MAX)
        return 0; /* out of memory: treated as dead, and not memoised */
    if (!map_put(&c->trans, key, r))
        c->oom = true;
    return r;
}

/* The dense transition row of set s, made on first use; NULL past GR_DENSE_ROWS rows or
 * on allocation failure (callers then use step). */
static uint32_t *dense_row(gr_core *c, uint32_t s)
{
    if (s < c->cap_dense && c->dense[s])
        return c->dense[s];
    if (c->n_dense_rows >= GR_DENSE_ROWS)
        return NULL;
    if (s >= c->cap_dense) {
        uint32_t cap = c->cap_dense ? c->cap_dense : 1024;
        while (cap <= s)
            cap *= 2;
        uint32_t **d = realloc(c->dense, cap * sizeof *d);
        if (!d)
            return NULL;
        memset(d + c->cap_dense, 0, (cap - c->cap_dense) * sizeof *d);
        c->dense = d;
        c->cap_dense = cap;
    }
    uint32_t *row = malloc(256 * sizeof *row);
    if (!row)
        return NULL;
    memset(row, 0xFF, 256 * sizeof *row);
    c->dense[s] = row;
    c->n_dense_rows++;
    return row;
}

/* step through the dense rows */
static inline uint32_t step_fast(gr_core *c, uint32_t s, unsigned char b)
{
    if (s == 0)
        return 0;
    uint32_t *row = s < c->cap_dense ? c->dense[s] : NULL;
    if (row && row[b] != GR_UNKNOWN)
        return row[b];
    const uint32_t r = step(c, s, b);
    if (!row)
        row = dense_row(c, s);
    if (row && !c->oom)
        row[b] = r;
    return r;
}

static bool set_complete(const gr_core *c, uint32_t s)
{
    return s != 0 && s != GR_ENDED && c->items[c->set_off[s]] == 0;
}

static void core_free(gr_core *c)
{
    if (!c)
        return;
    free(c->node_pos);
    free(c->node_dfa);
    free(c->node_parent);
    free(c->node_depth);
    map_free(&c->node_map);
    free(c->set_off);
    free(c->set_len);
    free(c->set_next);
    free(c->items);
    map_free(&c->set_map);
    map_free(&c->trans);
    for (uint32_t i = 0; i < c->cap_dense; i++)
        free(c->dense[i]);
    free(c->dense);
    map_free(&c->mask_map);
    free(c->masks);
    free(c->zero_mask);
    free(c->mask_far);
    free(c->budget_mask);
    free(c->dfa_min);
    free(c->pos_min);
    free(c->node_min);
    free(c->set_min);
    free(c->buf);
    free(c->depth_set);
    free(c);
}

static gr_core *core_create(const ponder_grammar *g, const ponder_grammar_vocab *v)
{
    gr_core *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->g = g;
    c->v = v;
    c->refs = 1;
    c->cap_nodes = 1024;
    c->node_pos = malloc(c->cap_nodes * sizeof *c->node_pos);
    c->node_dfa = malloc(c->cap_nodes * sizeof *c->node_dfa);
    c->node_parent = malloc(c->cap_nodes * sizeof *c->node_parent);
    c->node_depth = malloc(c->cap_nodes * sizeof *c->node_depth);
    c->cap_sets = 1024;
    c->set_off = malloc(c->cap_sets * sizeof *c->set_off);
    c->set_len = malloc(c->cap_sets * sizeof *c->set_len);
    c->set_next = malloc(c->cap_sets * sizeof *c->set_next);
    c->cap_items = 4096;
    c->items = malloc(c->cap_items * sizeof *c->items);
    c->words = ((uint32_t)v->n_vocab + 31) / 32;
    c->zero_mask = calloc(c->words, sizeof *c->zero_mask);
    c->depth_set = malloc((v->max_len + 2) * sizeof *c->depth_set);
    if (!c->node_pos || !c->node_dfa || !c->node_parent || !c->node_depth || !c->set_off || !c->set_len ||
        !c->set_next || !c->items || !c->zero_mask || !c->depth_set) {
        core_free(c);
        return NULL;
    }
    /* node 0: the empty stack; set 0: the empty set */
    c->node_pos[0] = c->node_dfa[0] = c->node_parent[0] = c->node_depth[0] = 0;
    c->n_nodes = 1;
    c->set_off[0] = c->set_len[0] = 0;
    c->set_next[0] = UINT32_MAX;
    c->n_sets = 1;
    return c;
}

static int32_t sat_add(int32_t a, int32_t b)
{
    const int64_t s = (int64_t)a + b;
    return s >= GR_FAR ? GR_FAR : (int32_t)s;
}

/* Bytes to complete, as fixed points: per DFA state (to finish its character), per rule
 * (its shortest sentence), per position (to the end of its alternative). Rules that
 * cannot end stay at GR_FAR. */
static bool compute_minima(gr_core *c)
{
    const ponder_grammar *g = c->g;
    int32_t *rule_min = malloc(((size_t)g->n_rules + 1) * sizeof *rule_min);
    c->dfa_min = malloc(((size_t)g->n_dfa + 1) * sizeof *c->dfa_min);
    c->pos_min = malloc(((size_t)g->n_elems + 1) * sizeof *c->pos_min);
    if (!rule_min || !c->dfa_min || !c->pos_min) {
        free(rule_min);
        return false;
    }
    for (uint32_t s = 0; s < g->n_dfa; s++)
        c->dfa_min[s] = GR_FAR;
    for (bool changed = true; changed;) {
        changed = false;
        for (uint32_t s = 2; s < g->n_dfa; s++) {
            int32_t best = c->dfa_min[s];
            for (uint32_t b = 0; b < 256; b++) {
                const uint32_t t = g->dfa[(size_t)s * 256 + b];
                const int32_t d = t == GR_DFA_ACCEPT ? 1 : t == GR_DFA_DEAD ? GR_FAR : sat_add(1, c->dfa_min[t]);
                best = d < best ? d : best;
            }
            if (best < c->dfa_min[s])
                c->dfa_min[s] = best, changed = true;
        }
    }
    for (uint32_t r = 0; r < g->n_rules; r++)
        rule_min[r] = GR_FAR;
    for (bool changed = true; changed;) {
        changed = false;
        for (uint32_t r = 0; r < g->n_rules; r++) {
            int32_t best = rule_min[r];
            for (uint32_t a = g->rule_alt[r]; a < g->rule_alt[r + 1]; a++) {
                int32_t sum = 0;
                for (uint32_t p = g->alts[a]; g->elems[p].kind != GR_END; p++)
                    sum = sat_add(sum, g->elems[p].kind == GR_CLASS ? c->dfa_min[g->elems[p].arg]
                                                                     : rule_min[g->elems[p].arg]);
                best = sum < best ? sum : best;
            }
            if (best < rule_min[r])
                rule_min[r] = best, changed = true;
        }
    }
    for (uint32_t a = 0; a < g->rule_alt[g->n_rules]; a++) {
        uint32_t end = g->alts[a];
        while (g->elems[end].kind != GR_END)
            end++;
        c->pos_min[end] = 0;
        for (uint32_t p = end; p-- > g->alts[a];)
            c->pos_min[p] = sat_add(c->pos_min[p + 1], g->elems[p].kind == GR_CLASS ? c->dfa_min[g->elems[p].arg]
                                                                                    : rule_min[g->elems[p].arg]);
    }
    free(rule_min);
    return true;
}

/* Bytes node n's stack needs to complete (cached per node). */
static int32_t node_min(gr_core *c, uint32_t n)
{
    if (n == 0)
        return 0;
    if (c->cap_node_min < c->n_nodes) {
        uint32_t cap = c->cap_node_min ? c->cap_node_min : 1024;
        while (cap < c->n_nodes)
            cap *= 2;
        int32_t *v = realloc(c->node_min, cap * sizeof *v);
        if (!v)
            return GR_FAR;
        for (uint32_t i = c->cap_node_min; i < cap; i++)
            v[i] = -1;
        c->node_min = v;
        c->cap_node_min = cap;
    }
    /* up the chain to a known node, then back down (stacks are deep, no recursion) */
    uint32_t chain_local[64], *chain = chain_local, n_chain = 0, cap_chain = 64;
    for (uint32_t k = n; k != 0 && c->node_min[k] < 0; k = c->node_parent[k]) {
        if (n_chain == cap_chain) {
            uint32_t *nc = malloc(2 * cap_chain * sizeof *nc);
            if (!nc) {
                if (chain != chain_local)
                    free(chain);
                return GR_FAR;
            }
            memcpy(nc, chain, n_chain * sizeof *nc);
            if (chain != chain_local)
                free(chain);
            chain = nc;
            cap_chain *= 2;
        }
        chain[n_chain++] = k;
    }
    while (n_chain > 0) {
        const uint32_t k = chain[--n_chain];
        const int32_t own = c->node_dfa[k] ? sat_add(c->dfa_min[c->node_dfa[k]], c->pos_min[c->node_pos[k] + 1])
                                           : c->pos_min[c->node_pos[k]];
        c->node_min[k] = sat_add(own, c->node_parent[k] ? c->node_min[c->node_parent[k]] : 0);
    }
    if (chain != chain_local)
        free(chain);
    return c->node_min[n];
}

/* Bytes state s needs to complete: 0 when complete, GR_FAR when dead. */
static int32_t set_min(gr_core *c, uint32_t s)
{
    if (s == GR_ENDED)
        return 0;
    if (s == 0)
        return GR_FAR;
    if (c->cap_set_min <= s) {
        uint32_t cap = c->cap_set_min ? c->cap_set_min : 1024;
        while (cap <= s)
            cap *= 2;
        int32_t *v = realloc(c->set_min, cap * sizeof *v);
        if (!v)
            return GR_FAR;
        for (uint32_t i = c->cap_set_min; i < cap; i++)
            v[i] = -1;
        c->set_min = v;
        c->cap_set_min = cap;
    }
    if (c->set_min[s] < 0) {
        int32_t best = GR_FAR;
        for (uint32_t i = 0; i < c->set_len[s]; i++) {
            const int32_t d = node_min(c, c->items[c->set_off[s] + i]);
            best = d < best ? d : best;
        }
        c->set_min[s] = best;
    }
    return c->set_min[s];
}

/* The start state: root's alternatives expanded over the empty stack. */
static uint32_t start_state(gr_core *c)
{
    const ponder_grammar *g = c->g;
    c->n_buf = 0;
    for (uint32_t a = g->rule_alt[g->root]; a < g->rule_alt[g->root + 1]; a++)
        expand(c, g->alts[a], 0);
    return c->oom ? UINT32_MAX : intern_set(c);
}

static bool hist_push(ponder_grammar_matcher *m, uint32_t s)
{
    if (m->n_hist == m->cap_hist) {
        int32_t cap = m->cap_hist ? m->cap_hist * 2 : 64;
        uint32_t *h = realloc(m->hist, (size_t)cap * sizeof *h);
        if (!h)
            return false;
        m->hist = h;
        m->cap_hist = cap;
    }
    m->hist[m->n_hist++] = s;
    return true;
}

ponder_status ponder_grammar_matcher_create(const ponder_grammar *g, const ponder_grammar_vocab *v,
                                            ponder_grammar_matcher **out, ponder_error *err)
{
    if (!g || !v || !out)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "grammar matcher: NULL argument");
    *out = NULL;
    ponder_grammar_matcher *m = calloc(1, sizeof *m);
    if (!m)
        return ponder_error_set(err, PONDER_ERR_NOMEM, "grammar matcher: out of memory");
    m->c = core_create(g, v);
    uint32_t s = m->c && compute_minima(m->c) ? start_state(m->c) : UINT32_MAX;
    if (s == UINT32_MAX || !hist_push(m, s)) {
        ponder_grammar_matcher_free(m);
        return ponder_error_set(err, PONDER_ERR_NOMEM, "grammar matcher: out of memory");
    }
    if (s == 0) {
        ponder_grammar_matcher_free(m);
        return ponder_error_set(err, PONDER_ERR_FORMAT,
                                "grammar: the root rule cannot start (it nests deeper than %d rules)", GR_MAX_DEPTH);
    }
    *out = m;
    return PONDER_OK;
}

ponder_status ponder_grammar_matcher_clone(const ponder_grammar_matcher *m, ponder_grammar_matcher **out,
                                           ponder_error *err)
{
    if (!m || !out)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "grammar matcher: NULL argument");
    ponder_grammar_matcher *k = calloc(1, sizeof *k);
    if (k) {
        k->cap_hist = m->n_hist;
        k->hist = malloc((size_t)k->cap_hist * sizeof *k->hist);
    }
    if (!k || !k->hist) {
        if (k)
            free(k);
        return ponder_error_set(err, PONDER_ERR_NOMEM, "grammar matcher: out of memory");
    }
    memcpy(k->hist, m->hist, (size_t)m->n_hist * sizeof *k->hist);
    k->n_hist = m->n_hist;
    k->c = m->c;
    k->c->refs++;
    *out = k;
    return PONDER_OK;
}

void ponder_grammar_matcher_free(ponder_grammar_matcher *m)
{
    if (!m)
        return;
    if (m->c && --m->c->refs == 0)
        core_free(m->c);
    free(m->hist);
    free(m);
}

static uint32_t cur(const ponder_grammar_matcher *m)
{
    return m->hist[m->n_hist - 1];
}

/* Does sorted token k start with pre[0..n)? */
static bool has_prefix(const ponder_grammar_vocab *v, int32_t k, const unsigned char *pre, uint32_t n)
{
    const int32_t t = v->order[k];
    return v->len[t] >= n && memcmp(v->bytes + v->off[t], pre, n) == 0;
}

/* The first sorted index after i whose token does not start with pre[0..n) (token i
 * does): a gallop, then a binary search, so a prefix shared by thousands of tokens (" t"
 * in a vocabulary of words with a leading space) is skipped in a few dozen compares. */
static int32_t skip_prefix(const ponder_grammar_vocab *v, int32_t i, const unsigned char *pre, uint32_t n)
{
    int32_t lo = i, step = 1; /* lo: known to have the prefix */
    int32_t hi = i + 1;
    while (hi < v->n_sorted && has_prefix(v, hi, pre, n)) {
        lo = hi;
        step *= 2;
        hi = lo + step;
    }
    if (hi > v->n_sorted)
        hi = v->n_sorted;
    while (hi - lo > 1) { /* lo has it, hi does not (or is the end) */
        const int32_t mid = lo + (hi - lo) / 2;
        if (has_prefix(v, mid, pre, n))
            lo = mid;
        else
            hi = mid;
    }
    return hi;
}

/* The walk over the sorted vocabulary from state s into mask (zeroed by the caller).
 * limit >= 0: only tokens after which the grammar can complete within limit bytes; *far
 * (if given): the most bytes to complete any allowed token leads to. */
static void walk_vocab(gr_core *c, uint32_t s, uint32_t *mask, int32_t limit, int32_t *far)
{
    const ponder_grammar_vocab *v = c->v;
    uint32_t *st = c->depth_set;
    st[0] = s;
    uint32_t ok_depth = 0; /* st[1..ok_depth] hold the previous token's prefix states */
    int32_t i = 0;
    while (i < v->n_sorted) {
        const int32_t t = v->order[i];
        const unsigned char *p = (const unsigned char *)v->bytes + v->off[t];
        const uint32_t len = v->len[t];
        uint32_t j = v->lcp[i] < ok_depth ? v->lcp[i] : ok_depth;
        for (; j < len; j++) {
            const uint32_t nx = step_fast(c, st[j], p[j]);
            if (nx == 0)
                break;
            st[j + 1] = nx;
        }
        if (j == len) {
            if (limit >= 0 || far) {
                const int32_t d = set_min(c, st[len]);
                if (far && d > *far)
                    *far = d;
                if (limit < 0 || d <= limit)
                    mask[t >> 5] |= 1u << (t & 31);
            } else {
                mask[t >> 5] |= 1u << (t & 31);
            }
            ok_depth = len;
            i++;
            continue;
        }
        /* the prefix p[0..j] is dead: skip every token that starts with it */
        ok_depth = j;
        if (j == 0) {
            i = v->first[p[0] + 1];
            continue;
        }
        i = skip_prefix(v, i, p, j + 1);
    }
}

const uint32_t *ponder_grammar_matcher_mask(ponder_grammar_matcher *m, ponder_error *err)
{
    if (!m) {
        ponder_error_set(err, PONDER_ERR_INVALID_ARG, "grammar matcher: NULL argument");
        return NULL;
    }
    gr_core *c = m->c;
    const uint32_t s = cur(m);
    if (s == GR_ENDED || s == 0)
        return c->zero_mask;
    uint32_t slot;
    if (map_get(&c->mask_map, s, &slot))
        return c->masks + (size_t)slot * c->words;
    if (!c->masks) {
        c->masks = malloc((size_t)GR_MASK_CACHE * c->words * sizeof *c->masks);
        if (!c->masks) {
            ponder_error_set(err, PONDER_ERR_NOMEM, "grammar matcher: out of memory for token masks");
            return NULL;
        }
    }
    if (c->n_masks == GR_MASK_CACHE) {
        map_clear(&c->mask_map);
        c->n_masks = 0;
    }
    slot = c->n_masks;
    uint32_t *mask = c->masks + (size_t)slot * c->words;
    memset(mask, 0, c->words * sizeof *mask);
    if (!c->mask_far && !(c->mask_far = malloc(GR_MASK_CACHE * sizeof *c->mask_far))) {
        ponder_error_set(err, PONDER_ERR_NOMEM, "grammar matcher: out of memory for token masks");
        return NULL;
    }
    c->mask_far[slot] = 0;
    walk_vocab(c, s, mask, -1, &c->mask_far[slot]);
    if (set_complete(c, s))
        for (int32_t k = 0; k < c->v->n_eog; k++)
            mask[c->v->eog[k] >> 5] |= 1u << (c->v->eog[k] & 31);
    if (c->oom || !map_put(&c->mask_map, s, slot)) {
        c->oom = false;
        ponder_error_set(err, PONDER_ERR_NOMEM, "grammar matcher: out of memory");
        return NULL;
    }
    c->n_masks++;
    return mask;
}

const uint32_t *ponder_grammar_matcher_mask_within(ponder_grammar_matcher *m, int32_t n_tokens, ponder_error *err)
{
    const uint32_t *base = ponder_grammar_matcher_mask(m, err);
    if (!base || n_tokens <= 0)
        return base;
    gr_core *c = m->c;
    const uint32_t s = cur(m);
    uint32_t slot;
    if (s == GR_ENDED || s == 0 || !map_get(&c->mask_map, s, &slot) || c->mask_far[slot] <= n_tokens - 1)
        return base; /* every allowed token leaves room to complete */
    if (!c->budget_mask && !(c->budget_mask = malloc(c->words * sizeof *c->budget_mask)))
        return base;
    memset(c->budget_mask, 0, c->words * sizeof *c->budget_mask);
    walk_vocab(c, s, c->budget_mask, n_tokens - 1, NULL);
    bool any = false;
    for (uint32_t w = 0; w < c->words && !any; w++)
        any = c->budget_mask[w] != 0;
    if (set_complete(c, s)) {
        for (int32_t k = 0; k < c->v->n_eog; k++)
            c->budget_mask[c->v->eog[k] >> 5] |= 1u << (c->v->eog[k] & 31);
        any = true;
    }
    return any ? c->budget_mask : base; /* none: it cannot complete in time anyway */
}

int32_t ponder_grammar_matcher_bytes_to_complete(ponder_grammar_matcher *m)
{
    if (!m)
        return INT32_MAX;
    const int32_t d = set_min(m->c, cur(m));
    return d >= GR_FAR ? INT32_MAX : d;
}

/* The state after token t's bytes from s (0: not allowed). */
static uint32_t run_token(gr_core *c, uint32_t s, ponder_token t)
{
    const ponder_grammar_vocab *v = c->v;
    if (t < 0 || t >= v->n_vocab || s == GR_ENDED || v->len[t] == 0)
        return 0;
    const unsigned char *p = (const unsigned char *)v->bytes + v->off[t];
    for (uint32_t j = 0; j < v->len[t] && s != 0; j++)
        s = step_fast(c, s, p[j]);
    return s;
}

bool ponder_grammar_matcher_allows(ponder_grammar_matcher *m, ponder_token t)
{
    if (!m || t < 0 || t >= m->c->v->n_vocab)
        return false;
    const uint32_t s = cur(m);
    if (m->c->v->is_eog[t])
        return set_complete(m->c, s);
    return run_token(m->c, s, t) != 0;
}

bool ponder_grammar_matcher_accept(ponder_grammar_matcher *m, ponder_token t)
{
    if (!m || t < 0 || t >= m->c->v->n_vocab)
        return false;
    const uint32_t s = cur(m);
    if (m->c->v->is_eog[t])
        return set_complete(m->c, s) && hist_push(m, GR_ENDED);
    const uint32_t n = run_token(m->c, s, t);
    return n != 0 && hist_push(m, n);
}

bool ponder_grammar_matcher_accept_bytes(ponder_grammar_matcher *m, const char *bytes, size_t len)
{
    if (!m || (!bytes && len > 0))
        return false;
    uint32_t s = cur(m);
    if (s == GR_ENDED)
        return false;
    for (size_t j = 0; j < len && s != 0; j++)
        s = step(m->c, s, (unsigned char)bytes[j]);
    return s != 0 && hist_push(m, s);
}

void ponder_grammar_matcher_rollback(ponder_grammar_matcher *m, int32_t n)
{
    if (!m || n <= 0)
        return;
    m->n_hist = n >= m->n_hist ? 1 : m->n_hist - n;
}

int32_t ponder_grammar_matcher_n_accepted(const ponder_grammar_matcher *m)
{
    return m ? m->n_hist - 1 : 0;
}

bool ponder_grammar_matcher_is_complete(const ponder_grammar_matcher *m)
{
    return m && set_complete(m->c, cur(m));
}

bool ponder_grammar_matcher_is_final(const ponder_grammar_matcher *m)
{
    if (!m)
        return false;
    const uint32_t s = cur(m);
    return s == GR_ENDED || (set_complete(m->c, s) && m->c->set_len[s] == 1);
}

bool ponder_grammar_matcher_is_ended(const ponder_grammar_matcher *m)
{
    return m && cur(m) == GR_ENDED;
}
