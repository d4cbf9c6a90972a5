/*
 * kernels.h — the per-ISA kernel slots behind the traits table, and CPU feature detection.
 *
 * types.c holds one row per type with the scalar reference kernels (the oracle). Each
 * instruction-set file (x86_avx2.c, x86_avx512.c, ...) exports one ponder_isa_kernels
 * table whose non-NULL slots replace the reference ones; dispatch.c merges them once at
 * init (pthread_once) into read-only resolved tables, one per path the CPU can run, and
 * an atomic pointer selects the active one (ponder_tensor_force_isa switches it). Kernels
 * read the pointer once per call, so a switch never mixes two paths inside one product.
 *
 * To add an ISA: a new file compiled with its own flags (see CMakeLists.txt), a table
 * here, a detection predicate in dispatch.c, and the tests pick it up by name. The
 * "avx512" path (AVX512F+BW+VL+VNNI, OS saving ZMM state) is the avx512vnni table with
 * x86_avx512.c's 512-bit kernels laid over it.
 */
#ifndef PONDER_TENSOR_KERNELS_H
#define PONDER_TENSOR_KERNELS_H

#include "ponder/tensor.h"

/* Tile kernel: y[t * y_stride + r] = dot(w row r, a row t) for r < n_rows, t < n_tok,
 * where n_rows is a multiple of gemm_rows and n_tok is gemm_tokens. (Single tokens use
 * vec_dot row by row: with weights streaming from memory, reading several rows at once
 * measured about half as fast as one sequential stream.)
 * Rows of w are w_stride bytes apart, rows of a (already in the vec_dot_type) a_stride
 * bytes apart. The kernel walks the rows gemm_rows at a time, so per-token work (like
 * widening f16 activations) is done once for all of them. */
typedef void (*ponder_gemm_fn)(int64_t n, int n_rows, int n_tok, const void *w, size_t w_stride,
                               const void *a, size_t a_stride, float *y, size_t y_stride);

/* Interleaved weight layouts (ponder_matrix_pack, pack.c). A matrix is packed for the
 * layout of the path active at load; a path computes with a packed matrix only if its
 * slot names the same layout, otherwise it reads the file rows.
 *  PONDER_PACK_Q8U_R16: groups of 16 rows of a Q8_0-family type (Q8_0, Q4_0, Q5_0,
 *    IQ4_NL: rows whose blocks are an f16 scale d times 32 int8 levels). A group of n
 *    columns (nb = n / 32 blocks) is [d: nb x 16 f16, block-major, padded to 64 bytes]
 *    [qs: nb x 512 bytes], where block b's 512 bytes hold, for quad j = 0..7 (elements
 *    4j..4j+3), 16 rows x 4 bytes: row r's levels + 128 as unsigned bytes. One 64-byte
 *    load is 16 rows x 4 elements, one vpdpbusd against 4 broadcast activation bytes
 *    gives 16 row sums; the +128 is taken back with the activation block's level sum.
 *  PONDER_PACK_Q5U_R16: Q5_0 in as many bytes as the file: [d as Q8U][per block: 4 x 64
 *    bytes of nibbles (vector p: low nibble = level + 16 of element 8p+e, high nibble of
 *    element 8p+4+e, for row r at byte 4r+e), then 8 x 64-bit masks (quad j: bit 4r+e =
 *    the 5th bit of row r's element 4j+e)], so decoding reads 22 bytes a row-block.
 *  PONDER_PACK_Q4K_R16, PONDER_PACK_Q6K_R16: groups of 16 rows of Q4_K / Q6_K, one
 *    record per 256-column super-block with the 16 rows' scales unpacked to bytes and
 *    their levels interleaved the same way (Q4_K two levels a byte, Q6_K level + 32 a
 *    byte); pack.c documents the records.
 *  PONDER_PACK_F16_R16, PONDER_PACK_BF16_R16: groups of 16 F16 (BF16) rows, column by
 *    column: column k is the 16 rows' values (32 bytes), so one load widens to 16 rows'
 *    weights for one FMA per token.
 */
enum { PONDER_PACK_NONE = 0, PONDER_PACK_Q8U_R16 = 1, PONDER_PACK_Q4K_R16 = 2, PONDER_PACK_Q6K_R16 = 3,
       PONDER_PACK_F16_R16 = 4, PONDER_PACK_BF16_R16 = 5, PONDER_PACK_Q5U_R16 = 6 };
enum { PONDER_PACK_Q4K_SB = 2496, PONDER_PACK_Q6K_SB = 4416 }; /* bytes per super-block record */
enum { PONDER_PACK_Q5U_BLOCK = 320 };                          /* bytes per block after the d section */
enum { PONDER_PACK_ROWS = 16 };

/* Bytes of one group of PONDER_PACK_ROWS rows of n columns in `layout` (0 if n does not
 * fit the layout). */
size_t ponder_pack_group_bytes(int layout, int64_t n);

/* Packed tile kernel: y[t * y_stride + g * 16 + r] = dot(row r of group g, a row t) for
 * g < n_groups, r < 16, t < n_tok (any n_tok >= 1: each token's float operations do not
 * depend on the others, so batching never changes a result). Groups are group_bytes
 * apart; sums[t * sums_stride + b] is the sum of the int8 levels of activation block b
 * of token t (matmul.c computes them once per product). */
typedef void (*ponder_packed_gemm_fn)(int64_t n, int64_t n_groups, int n_tok, const void *packed,
                                      size_t group_bytes, const void *a, size_t a_stride, const int32_t *sums,
                                      size_t sums_stride, float *y, size_t y_stride);

typedef struct ponder_type_kernels {
    ponder_vec_dot_fn vec_dot;       /* weight row . activation row (vec_dot_type) */
    ponder_from_float_fn from_float; /* activation conversion, for vec_dot_types; bit-identical
                                        to the reference quantizer */
    ponder_gemm_fn gemm;             /* optional tile kernel */
    int gemm_rows, gemm_tokens;      /* the tile it computes (exactly; edges use vec_dot) */
    /* Optional, instead of gemm for prompt-sized products: one weight row of n elements
     * rewritten as Q8_0 blocks holding the same integer levels and the same f16 scale
     * (Q4_0, Q5_0, IQ4_NL decode to int8 levels times d exactly), so the type's dot equals
     * the Q8_0 dot of the rewritten row bit for bit. matmul.c rewrites a chunk's rows once
     * and runs the Q8_0 tile kernel over every token, instead of decoding each weight
     * block once per token tile. */
    void (*to_q8_0_row)(int64_t n, const void *w, void *dst);
    int pack_layout;                 /* PONDER_PACK_*: the layout this path packs the type in */
    ponder_packed_gemm_fn packed_gemm; /* its kernel */
} ponder_type_kernels;

/* Attention of up to PONDER_ATTN_LANES queries of one KV head over an F16 K and V cache,
 * in the exact form (attention.c): each lane's scores q·k (q rounded to F16) for the
 * positions it sees, scaled, softmax (float exps, double sum), the weights rounded to F16,
 * then the weighted sum of V in position order. A lane's arithmetic depends only on its
 * own query and positions (not on the other lanes, their number or its index): positions
 * it does not see are weighed exactly 0. Position p of the sequence is cell
 * blocks[p / block_cells] * block_cells + p % block_cells; k and v point at cell 0's slice
 * of this KV head. Head sizes are multiples of 16, at most PONDER_ATTN_MAX_HD. */
enum { PONDER_ATTN_LANES = 16, PONDER_ATTN_MAX_HD = 256 };
typedef struct ponder_attn_lanes {
    int n_lanes, head_dim_k, head_dim_v, block_cells;
    const float *q[PONDER_ATTN_LANES]; /* query rows */
    float *out[PONDER_ATTN_LANES];     /* output rows (written) */
    int32_t lo[PONDER_ATTN_LANES], hi[PONDER_ATTN_LANES]; /* a lane sees positions [lo, hi] */
    const int32_t *blocks;
    const uint8_t *k, *v;
    size_t k_row_bytes, v_row_bytes;
    float kq_scale;
} ponder_attn_lanes;
typedef void (*ponder_attn_fn)(const ponder_attn_lanes *a, float *scratch);

/* Floats of scratch an attention kernel needs for positions [0, n_pos) (n_pos a multiple
 * of the block size, at most 64). */
static inline size_t ponder_attn_scratch_floats(size_t n_pos, int head_dim_k, int head_dim_v)
{
    const size_t hd = (size_t)(head_dim_k > head_dim_v ? head_dim_k : head_dim_v);
    return (size_t)PONDER_ATTN_LANES * (hd + hd + n_pos + 64) + 64 * hd + 16;
}

typedef struct ponder_isa_kernels {
    const char *name; /* "scalar", "avx2", ... as ponder_cpu_isa() reports it */
    ponder_type_kernels type[PONDER_TYPE_COUNT];
    void (*f32_to_f16_row)(const float *x, ponder_f16 *y, int64_t n);
    void (*f16_to_f32_row)(const ponder_f16 *x, float *y, int64_t n);
    void (*vec_dot_f16)(int64_t n, float *out, const ponder_f16 *x, const ponder_f16 *y);
    void (*vec_mad_f16)(int64_t n, float *y, const ponder_f16 *x, float a);
    void (*vec_dot_f16_rows)(int64_t n, int64_t n_rows, float *out, const ponder_f16 *rows, size_t row_stride,
                             const ponder_f16 *x);
    void (*vec_mad_f16_rows)(int64_t n, int64_t n_rows, float *y, const ponder_f16 *rows, size_t row_stride,
                             const float *w);
    double (*vec_exp_sub)(int64_t n, float *y, const float *x, float max);
    ponder_attn_fn attn_f16; /* optional: attention.c's exact form for F16 K and V */
} ponder_isa_kernels;

/* The active, fully resolved table (no NULL slot where the reference has a kernel). */
const ponder_isa_kernels *ponder_kernels(void);

/* Reference (scalar) row conversions and f16 dot from floats.c. */
void ponder_f32_to_f16_row_ref(const float *x, ponder_f16 *y, int64_t n);
void ponder_f16_to_f32_row_ref(const ponder_f16 *x, float *y, int64_t n);
void ponder_vec_dot_f16_ref(int64_t n, float *out, const ponder_f16 *x, const ponder_f16 *y);
void ponder_vec_mad_f16_ref(int64_t n, float *y, const ponder_f16 *x, float a);
double ponder_vec_exp_sub_ref(int64_t n, float *y, const float *x, float max);

/* ---- CPU features (cpu.c) ---- */
typedef struct ponder_cpu_features {
    bool avx, avx2, fma, f16c;                       /* + OS saves YMM state */
    bool avx512f, avx512bw, avx512vl, avx512vnni, avx512bf16; /* + OS saves ZMM state */
    bool avx_vnni;
} ponder_cpu_features;

/* What this CPU and OS support (all false on non-x86 hosts). */
ponder_cpu_features ponder_cpu_detect(void);

#if defined(__x86_64__)
#define PONDER_HAVE_X86_KERNELS 1
extern const ponder_isa_kernels ponder_kernels_avx2;
extern const ponder_isa_kernels ponder_kernels_avxvnni;    /* x86_avx2.c built with AVX-VNNI */
extern const ponder_isa_kernels ponder_kernels_avx512vnni; /* ... with AVX512-VNNI (256-bit) */
extern const ponder_isa_kernels ponder_kernels_avx512;     /* 512-bit kernels (x86_avx512.c), over avx512vnni */
void ponder_attn_f16_avx512(const ponder_attn_lanes *a, float *scratch); /* x86_avx512_attn.c */
#endif

#endif /* PONDER_TENSOR_KERNELS_H */
