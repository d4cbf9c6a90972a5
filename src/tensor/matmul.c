/*
 * matmul.c — row conversions and the threaded, batched matrix product.
 *
 * ponder_matmul_multi runs several products that share one input (Q, K and V; gate and
 * up) in ONE parallel region of the pool:
 *   1. the activations are converted once per distinct vec_dot_type (as llama.cpp's
 *      mul_mat does), token rows claimed one at a time by the threads; every thread
 *      waits until all rows are converted;
 *   2. the weight rows of all jobs, cut into chunks, are claimed from per-thread
 *      contiguous ranges (see owner_range). A chunk's size depends only on the matrix
 *      shape, never on the thread count, and every output is computed by the same kernel whichever thread takes its
 *      chunk, so results are bit-identical for any number of threads. Chunks are
 *      multiples of 16 rows, so two threads never write the same cache line of y.
 * Work is claimed, never assigned (ponder_pool_run_dynamic): a thread the OS did not
 * schedule in time simply does less, instead of holding up every product.
 * With several tokens (prompt processing) a chunk loops over the tokens in tiles so its
 * weight rows stay in L1/L2, calling the ISA's tile kernel (gemm) where there is one.
 */
#include "tensor/kernels.h"
#include "tensor/quants.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

/* Checks t is computable for the given kernel need and n is block-aligned. */
static ponder_status row_check(int t, int64_t n, bool need_from, const ponder_type_traits **out,
                               ponder_error *err)
{
    const ponder_type_traits *tr = ponder_type_get_traits(t);
    if (!tr)
        return ponder_error_set(err, PONDER_ERR_UNSUPPORTED, "unknown tensor type id %d", t);
    if (need_from ? !tr->from_float : !tr->to_float)
        return ponder_error_set(err, PONDER_ERR_UNSUPPORTED, "type %s: %s not implemented", tr->name,
                                need_from ? "quantization" : "dequantization");
    if (n < 0 || n % tr->block_elems != 0)
        return ponder_error_set(err, PONDER_ERR_FORMAT,
                                "row of %lld elements is not a multiple of the %s block size %lld",
                                (long long)n, tr->name, (long long)tr->block_elems);
    *out = tr;
    return PONDER_OK;
}

ponder_status ponder_dequantize_row(int t, const void *src, float *dst, int64_t n, ponder_error *err)
{
    const ponder_type_traits *tr = NULL;
    ponder_status st = row_check(t, n, false, &tr, err);
    if (st != PONDER_OK)
        return st;
    if (n > 0 && (!src || !dst))
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "dequantize %s: NULL buffer", tr->name);
    if (n > 0)
        tr->to_float(src, dst, n);
    return PONDER_OK;
}

ponder_status ponder_quantize_row(int t, const float *src, void *dst, int64_t n, ponder_error *err)
{
    const ponder_type_traits *tr = NULL;
    ponder_status st = row_check(t, n, true, &tr, err);
    if (st != PONDER_OK)
        return st;
    if (n > 0 && (!src || !dst))
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "quantize %s: NULL buffer", tr->name);
    if (n > 0)
        tr->from_float(src, dst, n);
    return PONDER_OK;
}

/* Bytes of one activation row in the vec_dot_type of w; 0 if w cannot be multiplied. */
static size_t act_row_bytes(const ponder_matrix *w)
{
    const ponder_type_traits *tr = ponder_type_get_traits(w->type);
    if (!tr || !tr->vec_dot || !tr->to_float || w->n_cols < 0 || w->n_cols % tr->block_elems != 0)
        return 0;
    const ponder_type_traits *vt = ponder_type_get_traits(tr->vec_dot_type);
    if (!vt || !vt->from_float || w->n_cols % vt->block_elems != 0)
        return 0;
    return (size_t)(w->n_cols / vt->block_elems) * vt->block_bytes;
}

#define ACT_ALIGN 64      /* regions after the first start on a cache line */

/* Bytes per token of the activation block sums a packed matrix's kernel reads (one int32
 * per 32-element block, after the activation rows). */
static size_t sums_row_bytes(const ponder_matrix *w)
{
    const ponder_type_traits *tr = ponder_type_get_traits(w->type);
    const bool q8_0 = tr && tr->vec_dot_type == PONDER_TYPE_Q8_0; /* Q8_K blocks carry their own sums */
    return w->packed && q8_0 ? (size_t)(w->n_cols / PONDER_QK) * sizeof(int32_t) : 0;
}

size_t ponder_matmul_work_bytes(const ponder_matrix *w, int64_t n_tokens)
{
    const size_t row = act_row_bytes(w);
    if (row == 0 || n_tokens < 0)
        return 0;
    const size_t per_token = row + sums_row_bytes(w) + (w->packed ? ACT_ALIGN : 0);
    if ((uint64_t)n_tokens + 1 > SIZE_MAX / per_token)
        return SIZE_MAX; /* an allocation of this fails, which is the right outcome */
    const size_t act = (size_t)n_tokens * per_token + (w->packed ? ACT_ALIGN : 0);
    const size_t floats = (size_t)w->n_cols * sizeof(float); /* kept: callers size one buffer for both modes */
    return act > floats ? act : floats;
}

/* ---- the work buffer: one region per distinct vec_dot_type ---- */

#define MAX_ACT_TYPES 8   /* distinct vec_dot_types: F32 F16 BF16 Q8_0 Q8_1 Q8_K */

typedef struct act_region {
    ponder_type type;
    size_t row_bytes;
    size_t offset;        /* in work; unused for F32, whose rows are x itself */
    size_t sums_bytes;    /* per token, 0 if no job of this type is packed */
    size_t sums_offset;   /* in work: n_tokens rows of sums_bytes */
} act_region;

/* Fills acts with the distinct vec_dot_types of jobs (first-appearance order) and *total
 * with the bytes they need. Returns their count, or -1 if a job cannot be multiplied or
 * the size overflows (*total = SIZE_MAX then). */
static int plan_acts(const ponder_matmul_job *jobs, int n_jobs, int64_t n_tokens, act_region *acts,
                     size_t *total)
{
    int n = 0;
    size_t end = 0;
    *total = 0;
    for (int j = 0; j < n_jobs; j++) {
        const size_t row = act_row_bytes(jobs[j].w);
        if (row == 0)
            return -1;
        const ponder_type vt = ponder_type_get_traits(jobs[j].w->type)->vec_dot_type;
        int a = 0;
        while (a < n && acts[a].type != vt)
            a++;
        if (a < n) {
            if (acts[a].sums_bytes == 0)
                acts[a].sums_bytes = sums_row_bytes(jobs[j].w);
            continue;
        }
        if (n == MAX_ACT_TYPES)
            return -1;
        acts[n] = (act_region){.type = vt, .row_bytes = row, .offset = 0, .sums_bytes = sums_row_bytes(jobs[j].w)};
        if (vt != PONDER_TYPE_F32) {
            if ((uint64_t)n_tokens > (SIZE_MAX - ACT_ALIGN - end) / row) {
                *total = SIZE_MAX;
                return -1;
            }
            const size_t start = end == 0 ? 0 : (end + ACT_ALIGN - 1) / ACT_ALIGN * ACT_ALIGN;
            acts[n].offset = start;
            end = start + (size_t)n_tokens * row;
        }
        n++;
    }
    for (int a = 0; a < n; a++) { /* the block sums, after every region */
        if (acts[a].sums_bytes == 0)
            continue;
        if ((uint64_t)n_tokens > (SIZE_MAX - ACT_ALIGN - end) / acts[a].sums_bytes) {
            *total = SIZE_MAX;
            return -1;
        }
        acts[a].sums_offset = (end + ACT_ALIGN - 1) / ACT_ALIGN * ACT_ALIGN;
        end = acts[a].sums_offset + (size_t)n_tokens * acts[a].sums_bytes;
    }
    *total = end;
    return n;
}

size_t ponder_matmul_multi_work_bytes(const ponder_matmul_job *jobs, int n_jobs, int64_t n_tokens, int n_threads)
{
    (void)n_threads; /* per-thread scratch lives on the stack; kept for kernels that may need it */
    act_region acts[MAX_ACT_TYPES];
    size_t total;
    if (n_jobs < 0 || n_tokens < 0)
        return 0;
    if (plan_acts(jobs, n_jobs, n_tokens, acts, &total) < 0)
        return total == SIZE_MAX ? SIZE_MAX : 0;
    return total;
}

/* ---- the parallel region ---- */

/* The chunks are dealt out as one contiguous range per thread: a thread streams through
 * its own weights in order (hardware prefetchers need that: interleaving small chunks
 * between two threads measured ~25% less bandwidth), claiming from the front of its
 * range; a thread that has run out steals single chunks from the back of another's. A
 * range is (lo, hi) in one 64-bit word so both ends move by compare-and-swap. */
#define MAX_OWNERS 64 /* threads beyond this only steal */

typedef struct owner_range {
    _Alignas(64) _Atomic uint64_t lohi; /* lo in the low 32 bits, hi in the high 32 */
} owner_range;

typedef struct mm_task {
    const ponder_matmul_job *jobs;
    int n_jobs;
    int64_t n_tokens, n_cols;
    const float *x;
    uint8_t *work;
    bool float_mode;
    const ponder_isa_kernels *k;
    int n_acts;
    act_region acts[MAX_ACT_TYPES];
    int conv_act[MAX_ACT_TYPES]; /* the regions that need converting (not F32), in order */
    int64_t n_conv;              /* activation rows to convert: regions x tokens */
    int64_t n_chunks;            /* over all jobs */
    /* every thread hits these: one cache line each, away from the read-only fields */
    _Alignas(64) _Atomic int64_t next_conv;
    _Alignas(64) _Atomic int64_t conv_done;
    _Alignas(64) _Atomic int64_t chunks_done;
    int n_owners;
    owner_range owners[MAX_OWNERS];
} mm_task;

/* Rows per chunk of a matrix with rows of row_bytes: about CHUNK_BYTES of weights (in L1
 * next to a tile of activations), a multiple of CHUNK_ROW_MULT rows (16 floats of y = one
 * cache line; a multiple of every tile height). Depends on the shape only. */
#define CHUNK_BYTES 16384
#define CHUNK_ROW_MULT 16

static int64_t chunk_rows_of(const ponder_matrix *w)
{
    int64_t rows = (int64_t)(CHUNK_BYTES / (w->row_bytes ? w->row_bytes : 1));
    rows = rows / CHUNK_ROW_MULT * CHUNK_ROW_MULT;
    return rows < CHUNK_ROW_MULT ? CHUNK_ROW_MULT : rows;
}

static const uint8_t *act_rows(const mm_task *t, ponder_type vt, size_t *row_bytes, const act_region **region)
{
    for (int a = 0; a < t->n_acts; a++) {
        if (t->acts[a].type == vt) {
            *row_bytes = t->acts[a].row_bytes;
            *region = &t->acts[a];
            return vt == PONDER_TYPE_F32 ? (const uint8_t *)t->x : t->work + t->acts[a].offset;
        }
    }
    return NULL; /* unreachable: plan_acts saw every job */
}

/* The int8 level sum of each 32-element block of one Q8_0 activation row. */
static void block_sums(const uint8_t *row, int64_t nb, int32_t *sums)
{
    for (int64_t b = 0; b < nb; b++) {
        const ponder_block_q8_0 *blk = (const ponder_block_q8_0 *)row + b;
        int32_t s = 0;
        for (int j = 0; j < PONDER_QK; j++)
            s += blk->qs[j];
        sums[b] = s;
    }
}

/* Float mode: each weight row dequantized piece by piece on the stack and dotted with
 * every token in double, in index order — the same sums as the reference
 * ponder_vec_dot_f32 over the whole dequantized row, without a per-thread buffer. */
#define FLOAT_PIECE 256   /* elements; a multiple of every block size */
#define FLOAT_TOKENS 64

static void float_rows(const mm_task *t, const ponder_matrix *w, float *y, int64_t r0, int64_t r1)
{
    const ponder_type_traits *tr = ponder_type_get_traits(w->type);
    const int64_t n_cols = t->n_cols;
    float piece[FLOAT_PIECE];
    double acc[FLOAT_TOKENS];
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *wrow = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
        for (int64_t t0 = 0; t0 < t->n_tokens; t0 += FLOAT_TOKENS) {
            const int64_t nt = t->n_tokens - t0 < FLOAT_TOKENS ? t->n_tokens - t0 : FLOAT_TOKENS;
            for (int64_t i = 0; i < nt; i++)
                acc[i] = 0.0;
            for (int64_t p0 = 0; p0 < n_cols; p0 += FLOAT_PIECE) {
                const int64_t len = n_cols - p0 < FLOAT_PIECE ? n_cols - p0 : FLOAT_PIECE;
                tr->to_float(wrow + (size_t)(p0 / tr->block_elems) * tr->block_bytes, piece, len);
                for (int64_t i = 0; i < nt; i++) {
                    const float *xr = t->x + (t0 + i) * n_cols + p0;
                    double s = acc[i];
                    for (int64_t e = 0; e < len; e++)
                        s += (double)(piece[e] * xr[e]);
                    acc[i] = s;
                }
            }
            for (int64_t i = 0; i < nt; i++)
                y[(t0 + i) * w->n_rows + r] = (float)acc[i];
        }
    }
}

/* Stack room for a chunk's rows rewritten as Q8_0 (a Q5_0 chunk of 16 KiB grows to about
 * 25 KiB); chunks that do not fit use the type's own tile kernel. Below REPACK_MIN_TOKENS
 * tokens the rewrite costs more than it saves. */
#define REPACK_BYTES 32768
#define REPACK_MIN_TOKENS 16

/* Rows [r0, r1) of one job for every token. */
static void run_rows(const mm_task *t, const ponder_matmul_job *job, int64_t r0, int64_t r1)
{
    const ponder_matrix *w = job->w;
    if (t->float_mode) {
        float_rows(t, w, job->y, r0, r1);
        return;
    }
    const ponder_type_kernels *kt = &t->k->type[w->type];
    size_t arow = 0;
    const act_region *region = NULL;
    const uint8_t *act = act_rows(t, ponder_type_get_traits(w->type)->vec_dot_type, &arow, &region);
    const uint8_t *wdata = w->data;
    const size_t wrow = w->row_bytes;
    const int64_t n_tokens = t->n_tokens, n_rows = w->n_rows, n_cols = t->n_cols;
    float *y = job->y;
    /* Packed rows: the path's tile kernel for every token count (chunks start on a group). */
    if (w->packed && kt->packed_gemm && kt->pack_layout == w->packed_layout && r0 < w->packed_rows) {
        const int64_t p1 = r1 < w->packed_rows ? r1 : w->packed_rows;
        const size_t gb = ponder_pack_group_bytes(w->packed_layout, n_cols);
        kt->packed_gemm(n_cols, (p1 - r0) / PONDER_PACK_ROWS, (int)n_tokens,
                        (const uint8_t *)w->packed + (size_t)(r0 / PONDER_PACK_ROWS) * gb, gb, act, arow,
                        region->sums_bytes ? (const int32_t *)(t->work + region->sums_offset) : NULL,
                        region->sums_bytes / sizeof(int32_t),
                        y + r0, (size_t)n_rows);
        r0 = p1;
        if (r0 >= r1)
            return;
    }
    int64_t t0 = 0;
    /* Rows rewritten as Q8_0 once per chunk serve every token tile (see to_q8_0_row). */
    const ponder_type_kernels *kg = kt;
    const uint8_t *gw = wdata + (size_t)r0 * wrow;
    size_t gws = wrow;
    _Alignas(32) uint8_t q8rows[REPACK_BYTES];
    const ponder_type_kernels *k8 = &t->k->type[PONDER_TYPE_Q8_0];
    if (kt->to_q8_0_row && k8->gemm && n_tokens >= REPACK_MIN_TOKENS &&
        ponder_type_get_traits(w->type)->vec_dot_type == PONDER_TYPE_Q8_0) {
        const size_t q8row = (size_t)(n_cols / PONDER_QK) * sizeof(ponder_block_q8_0);
        const int64_t rows = (r1 - r0) / k8->gemm_rows * k8->gemm_rows;
        if (rows > 0 && (size_t)rows <= sizeof q8rows / q8row) {
            for (int64_t r = 0; r < rows; r++)
                kt->to_q8_0_row(n_cols, wdata + (size_t)(r0 + r) * wrow, q8rows + (size_t)r * q8row);
            kg = k8;
            gw = q8rows;
            gws = q8row;
        }
    }
    if (kg->gemm && n_tokens >= kg->gemm_tokens) {
        const int RM = kg->gemm_rows, RN = kg->gemm_tokens;
        const int64_t r_tiles = (r1 - r0) / RM * RM;
        for (; t0 + RN <= n_tokens; t0 += RN) {
            if (r_tiles > 0)
                kg->gemm(n_cols, (int)r_tiles, RN, gw, gws, act + (size_t)t0 * arow, arow, y + t0 * n_rows + r0,
                         (size_t)n_rows);
            for (int64_t r = r0 + r_tiles; r < r1; r++)
                for (int64_t tt = t0; tt < t0 + RN; tt++)
                    kt->vec_dot(n_cols, &y[tt * n_rows + r], wdata + (size_t)r * wrow, act + (size_t)tt * arow);
        }
    }
    /* one weight row against every remaining token: the row stays in L1 */
    for (int64_t r = r0; r < r1; r++)
        for (int64_t tt = t0; tt < n_tokens; tt++)
            kt->vec_dot(n_cols, &y[tt * n_rows + r], wdata + (size_t)r * wrow, act + (size_t)tt * arow);
}

static void run_chunk(const mm_task *t, int64_t c)
{
    for (int j = 0; j < t->n_jobs; j++) {
        const ponder_matrix *w = t->jobs[j].w;
        const int64_t cr = chunk_rows_of(w);
        const int64_t nc = (w->n_rows + cr - 1) / cr;
        if (c < nc) {
            const int64_t r0 = c * cr, r1 = r0 + cr < w->n_rows ? r0 + cr : w->n_rows;
            run_rows(t, &t->jobs[j], r0, r1);
            return;
        }
        c -= nc;
    }
}

/* Takes chunk lo (from_front) or hi - 1 of range r; -1 once it is empty. */
static int64_t claim(owner_range *r, bool from_front)
{
    uint64_t v = atomic_load_explicit(&r->lohi, memory_order_relaxed);
    for (;;) {
        const uint64_t lo = v & 0xffffffffu, hi = v >> 32;
        if (lo >= hi)
            return -1;
        const uint64_t next = from_front ? (hi << 32) | (lo + 1) : ((hi - 1) << 32) | lo;
        if (atomic_compare_exchange_weak_explicit(&r->lohi, &v, next, memory_order_relaxed, memory_order_relaxed))
            return (int64_t)(from_front ? lo : hi - 1);
    }
}

/* Spins until *count reaches target; yields after a while in case the machine is
 * oversubscribed and the thread holding the missing items needs this CPU. */
static void wait_for(_Atomic int64_t *count, int64_t target)
{
    int spins = 0;
    while (atomic_load_explicit(count, memory_order_acquire) < target) {
        if (++spins < 1 << 12)
            CPU_RELAX();
        else
            sched_yield();
    }
}

/* Run through ponder_pool_run_dynamic: every item (an activation row to convert, a chunk
 * of weight rows) is claimed (from a counter, or a range) and counted when done, so the task is finished
 * when the counts are full, whichever threads did the work; a worker that arrives late
 * finds nothing left to claim. */
static void matmul_worker(void *arg, int ith, int nth)
{
    mm_task *t = arg;
    (void)nth;
    if (t->n_conv > 0) {
        for (int64_t i; (i = atomic_fetch_add_explicit(&t->next_conv, 1, memory_order_relaxed)) < t->n_conv;) {
            const act_region *a = &t->acts[t->conv_act[i / t->n_tokens]];
            const int64_t tok = i % t->n_tokens;
            uint8_t *row = t->work + a->offset + (size_t)tok * a->row_bytes;
            t->k->type[a->type].from_float(t->x + tok * t->n_cols, row, t->n_cols);
            if (a->sums_bytes > 0)
                block_sums(row, t->n_cols / PONDER_QK,
                           (int32_t *)(t->work + a->sums_offset + (size_t)tok * a->sums_bytes));
            atomic_fetch_add_explicit(&t->conv_done, 1, memory_order_release);
        }
        wait_for(&t->conv_done, t->n_conv);
    }
    /* chunks done are counted once per thread, when it has found nothing left to claim
     * (a locked add after every chunk measured ~3 % of a decode step) */
    int64_t done = 0;
    if (ith < t->n_owners) {
        for (int64_t c; (c = claim(&t->owners[ith], true)) >= 0; done++)
            run_chunk(t, c);
    }
    for (int k = 1; k <= t->n_owners; k++) { /* then help the others, next thread first */
        owner_range *r = &t->owners[(ith + k) % t->n_owners];
        for (int64_t c; (c = claim(r, false)) >= 0; done++)
            run_chunk(t, c);
    }
    if (done > 0)
        atomic_fetch_add_explicit(&t->chunks_done, done, memory_order_release);
    if (ith == 0)
        wait_for(&t->chunks_done, t->n_chunks); /* thread 0 returns only when all is done */
}

void ponder_matmul_multi(const ponder_matmul_job *jobs, int n_jobs, int64_t n_tokens, const float *x, void *work,
                         bool float_activations, ponder_pool *pool)
{
    if (n_jobs <= 0 || n_tokens <= 0)
        return;
    mm_task t = {
        .jobs = jobs,
        .n_jobs = n_jobs,
        .n_tokens = n_tokens,
        .n_cols = jobs[0].w->n_cols,
        .x = x,
        .work = work,
        .float_mode = float_activations,
        .k = ponder_kernels(),
    };
    size_t total;
    t.n_acts = plan_acts(jobs, n_jobs, n_tokens, t.acts, &total);
    /* preconditions (the caller checked the types when loading the weights) */
    assert(t.n_acts > 0);
    for (int j = 0; j < n_jobs; j++) {
        const ponder_matrix *w = jobs[j].w;
        const ponder_type_traits *tr = ponder_type_get_traits(w->type);
        assert(w->n_cols == t.n_cols);
        assert(w->row_bytes >= (size_t)(w->n_cols / tr->block_elems) * tr->block_bytes);
        (void)tr;
        t.n_chunks += (w->n_rows + chunk_rows_of(w) - 1) / chunk_rows_of(w);
    }
    if (!float_activations) {
        int n_conv_types = 0;
        for (int a = 0; a < t.n_acts; a++)
            if (t.acts[a].type != PONDER_TYPE_F32)
                t.conv_act[n_conv_types++] = a;
        t.n_conv = (int64_t)n_conv_types * n_tokens;
    }
    atomic_init(&t.next_conv, 0);
    atomic_init(&t.conv_done, 0);
    atomic_init(&t.chunks_done, 0);
    assert(t.n_chunks < ((int64_t)1 << 32)); /* ranges hold 32-bit chunk indices */
    const int nth = ponder_pool_n_threads(pool);
    t.n_owners = nth < MAX_OWNERS ? nth : MAX_OWNERS;
    for (int i = 0; i < t.n_owners; i++) {
        const uint64_t lo = (uint64_t)(t.n_chunks * i / t.n_owners), hi = (uint64_t)(t.n_chunks * (i + 1) / t.n_owners);
        atomic_init(&t.owners[i].lohi, (hi << 32) | lo);
    }
    ponder_pool_run_dynamic(pool, matmul_worker, &t);
}

void ponder_matmul(const ponder_matrix *w, int64_t n_tokens, const float *x, float *y, void *work,
                   bool float_activations, ponder_pool *pool)
{
    const ponder_matmul_job job = {.w = w, .y = y};
    ponder_matmul_multi(&job, 1, n_tokens, x, work, float_activations, pool);
}
