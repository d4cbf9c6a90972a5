/* test_batch_invariance.c — batching never changes a product's bits.
 *
 * Ponder decodes several sequences together and promises that a chain sampled inside a
 * batch is token-identical to the same chain decoded alone. That holds only if
 * y[token][row] of ponder_matmul is the same float whatever n_tokens is and whatever the
 * other tokens are: the single-token (vec_dot) path and the tiled (gemm) path, the tile
 * edges, the rows rewritten as Q8_0 for long prompts, every chunk size and thread count
 * must add the same terms in the same order. For every supported type (the traits table,
 * so a new type is covered when added), every kernel path this CPU runs, both activation
 * modes and 1 and 2 threads, each token of a pool is multiplied alone, then inside
 * batches of 2..17 and 64 tokens taken at shifting offsets of the pool; the outputs must
 * be memcmp-equal. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ponder/pool.h"
#include "ponder/tensor.h"
#include "tensor_test.h"

#include <stdio.h>
#include <string.h>

static const char *const PATHS[] = {"scalar", "avx2", "avx512vnni", "avxvnni", "avx512"};
enum { N_PATHS = sizeof PATHS / sizeof PATHS[0] };

enum { N_POOL = 83, MAX_BATCH = 64 }; /* pool of token rows; the largest batch */

/* Batch sizes: every size up to the largest tile and past it, and a prompt-sized batch
 * (which takes the rewrite-as-Q8_0 path where a type has one). */
static const int64_t BATCHES[] = {2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 64};
enum { N_BATCHES = sizeof BATCHES / sizeof BATCHES[0] };

typedef struct shape {
    int64_t n_cols, n_rows;
} shape;

/* Shapes for a type whose rows are made of blocks of `be` elements: one block, a count
 * of blocks that leaves a remainder for four-block loops, and several blocks; row counts
 * that are not a multiple of any tile, and one that spans several chunks. Float types
 * (be == 1) get odd lengths, and one too long for the F16 tile's stack-widened rows. */
static int shapes_of(int64_t be, shape out[4])
{
    if (be == 1) {
        out[0] = (shape){37, 7};
        out[1] = (shape){300, 21};
        out[2] = (shape){1001, 37};
        out[3] = (shape){4103, 9};
        return 4;
    }
    if (be >= 256) {
        out[0] = (shape){be, 13};
        out[1] = (shape){3 * be, 37};
        out[2] = (shape){5 * be, 6};
        return 3;
    }
    out[0] = (shape){be, 5};
    out[1] = (shape){7 * be, 37};
    out[2] = (shape){24 * be, 19};
    return 3;
}

/* Products of one matrix: every pool token alone, then every batch. Adds the (token, row)
 * outputs compared to *n_compared and returns how many differed (the first one is
 * described), so one run lists every type that breaks the promise. */
static int64_t check_matrix(const char *path, const ponder_matrix *w, const float *x, bool float_mode,
                            ponder_pool *pool, int64_t *n_compared)
{
    const int64_t n_rows = w->n_rows, n_cols = w->n_cols;
    const ponder_matmul_job job = {.w = w, .y = NULL};
    const size_t wb = ponder_matmul_multi_work_bytes(&job, 1, MAX_BATCH, ponder_pool_n_threads(pool));
    void *work = malloc(wb ? wb : 1);
    float *alone = malloc(sizeof(float) * (size_t)(N_POOL * n_rows));
    float *y = malloc(sizeof(float) * (size_t)(MAX_BATCH * n_rows));
    float *xb = malloc(sizeof(float) * (size_t)(MAX_BATCH * n_cols));
    assert_true(work && alone && y && xb);

    for (int64_t i = 0; i < N_POOL; i++)
        ponder_matmul(w, 1, x + i * n_cols, alone + i * n_rows, work, float_mode, pool);

    int64_t n_differ = 0;
    bool described = false;
    for (int b = 0; b < N_BATCHES; b++) {
        const int64_t nt = BATCHES[b];
        /* the batch takes pool tokens start, start+1, ... (wrapping), so a token sits at a
         * different position, next to different neighbours, in each batch */
        const int64_t start = (b * 29 + 5) % N_POOL;
        for (int64_t i = 0; i < nt; i++)
            memcpy(xb + i * n_cols, x + ((start + i) % N_POOL) * n_cols, sizeof(float) * (size_t)n_cols);
        for (int64_t i = 0; i < nt * n_rows; i++)
            y[i] = NAN;
        ponder_matmul(w, nt, xb, y, work, float_mode, pool);
        for (int64_t i = 0; i < nt; i++) {
            const int64_t tok = (start + i) % N_POOL;
            const float *want = alone + tok * n_rows, *got = y + i * n_rows;
            for (int64_t r = 0; r < n_rows; r++) {
                if (memcmp(&want[r], &got[r], sizeof(float)) == 0)
                    continue;
                n_differ++;
                if (described)
                    continue;
                described = true;
                print_message("%s path %s%s, %d thread(s), %lld x %lld: token %lld at position %lld of a batch of %lld, "
                         "row %lld: alone %.9g (%a), in the batch %.9g (%a)\n",
                         ponder_type_name(w->type), path, float_mode ? " float mode" : "",
                         ponder_pool_n_threads(pool), (long long)n_rows, (long long)n_cols, (long long)tok,
                         (long long)i, (long long)nt, (long long)r, want[r], want[r], got[r], got[r]);
            }
            *n_compared += n_rows;
        }
    }
    free(work);
    free(alone);
    free(y);
    free(xb);
    return n_differ;
}

static void check_path(const char *path, bool float_mode, ponder_pool *pools[2])
{
    int n_types = 0, n_packed = 0;
    int64_t n_compared = 0, n_differ = 0;
    for (int t = 0; t < PONDER_TYPE_COUNT; t++) {
        if (!ponder_type_is_supported(t))
            continue;
        n_types++;
        const ponder_type_traits *tr = ponder_type_get_traits(t);
        const ponder_type_traits *vt = ponder_type_get_traits(tr->vec_dot_type);
        const int64_t be = tr->block_elems > vt->block_elems ? tr->block_elems : vt->block_elems;
        shape shapes[4];
        const int n_shapes = shapes_of(be, shapes);
        for (int s = 0; s < n_shapes; s++) {
            const int64_t n_cols = shapes[s].n_cols, n_rows = shapes[s].n_rows;
            tt_rng rng = {0x5eed0000u + (uint64_t)(t * 16 + s)};
            size_t row_bytes = 0;
            assert_int_equal(ponder_type_row_bytes(t, n_cols, &row_bytes, NULL), PONDER_OK);
            uint8_t *wq = malloc(row_bytes * (size_t)n_rows);
            float *f = malloc(sizeof(float) * (size_t)n_cols);
            float *x = malloc(sizeof(float) * (size_t)(N_POOL * n_cols));
            assert_true(wq && f && x);
            for (int64_t r = 0; r < n_rows; r++) {
                tt_fill_gauss(&rng, f, n_cols, 0.05);
                assert_int_equal(ponder_quantize_row(t, f, wq + (size_t)r * row_bytes, n_cols, NULL), PONDER_OK);
            }
            tt_fill_gauss(&rng, x, N_POOL * n_cols, 1.0);
            ponder_matrix w = {.type = (ponder_type)t, .n_cols = n_cols, .n_rows = n_rows,
                               .row_bytes = row_bytes, .data = wq};
            /* repacked where the path has a tile layout for the type (whole 16-row groups;
             * the rest stay file rows), as a model load does */
            assert_int_equal(ponder_matrix_pack(&w, false, NULL), PONDER_OK);
            n_packed += w.packed != NULL;
            for (int p = 0; p < 2; p++)
                n_differ += check_matrix(path, &w, x, float_mode, pools[p], &n_compared);
            ponder_matrix_unpack(&w);
            free(wq);
            free(f);
            free(x);
        }
    }
    assert_int_equal(n_types, 14); /* F32 F16 BF16, Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 IQ4_NL, Q2..Q6_K */
    print_message("path %s%s: %d types (%d matrices repacked), %lld of %lld outputs differ\n", path,
                  float_mode ? " (float mode)" : "", n_types, n_packed, (long long)n_differ, (long long)n_compared);
    if (n_differ)
        fail_msg("path %s%s: batching changed %lld outputs (listed above)", path, float_mode ? " (float mode)" : "",
                 (long long)n_differ);
}

static void run_mode(bool float_mode)
{
    ponder_pool *pools[2] = {NULL, NULL};
    assert_int_equal(ponder_pool_create(2, &pools[1], NULL), PONDER_OK);
    int n_paths = 0;
    for (int p = 0; p < N_PATHS; p++) {
        if (!ponder_tensor_isa_available(PATHS[p])) {
            print_message("path %s: not available here, skipped\n", PATHS[p]);
            continue;
        }
        assert_int_equal(ponder_tensor_force_isa(PATHS[p], NULL), PONDER_OK);
        check_path(PATHS[p], float_mode, pools);
        n_paths++;
    }
    assert_true(n_paths >= 1);
    ponder_tensor_force_isa(NULL, NULL);
    ponder_pool_free(pools[1]);
}

static void test_quantized_activations(void **state)
{
    (void)state;
    run_mode(false);
}

static void test_float_activations(void **state)
{
    (void)state;
    run_mode(true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quantized_activations),
        cmocka_unit_test(test_float_activations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
