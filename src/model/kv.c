/*
 * kv.c — the paged KV store of a context: KV cells in blocks of KV_BLOCK_CELLS, a free
 * list, a reference count per block and a block table per sequence (vLLM's PagedAttention
 * layout). Forked sequences share their common blocks; a block is copied before a sequence
 * writes into it while another sequence still holds it (copy on write). Only the tail block
 * of a sequence is ever written, so at most one copy per sequence per batch.
 */
#include "model/model_internal.h"

#include <stdlib.h>
#include <string.h>

ponder_status kv_pages_init(kv_pages *kv, int32_t n_seq, int32_t n_cells, int32_t n_ctx)
{
    memset(kv, 0, sizeof *kv);
    kv->n_seq = n_seq;
    kv->n_blocks = (int32_t)(((int64_t)n_cells + KV_BLOCK_CELLS - 1) / KV_BLOCK_CELLS);
    kv->max_blocks_seq = (n_ctx + KV_BLOCK_CELLS - 1) / KV_BLOCK_CELLS;
    kv->free_list = malloc((size_t)kv->n_blocks * sizeof(int32_t));
    kv->refs = calloc((size_t)kv->n_blocks, sizeof(int32_t));
    kv->writers = calloc((size_t)kv->n_blocks, sizeof(int32_t));
    kv->tables = calloc((size_t)n_seq * (size_t)kv->max_blocks_seq, sizeof(int32_t));
    kv->seq_len = calloc((size_t)n_seq, sizeof(int32_t));
    if (!kv->free_list || !kv->refs || !kv->writers || !kv->tables || !kv->seq_len)
        return PONDER_ERR_NOMEM;
    /* block 0 on top: a lone sequence fills the cells in order, as the flat cache did */
    for (int32_t i = 0; i < kv->n_blocks; i++)
        kv->free_list[i] = kv->n_blocks - 1 - i;
    kv->n_free = kv->n_blocks;
    return PONDER_OK;
}

void kv_pages_free(kv_pages *kv)
{
    free(kv->free_list);
    free(kv->refs);
    free(kv->writers);
    free(kv->tables);
    free(kv->seq_len);
    memset(kv, 0, sizeof *kv);
}

static int32_t *seq_table(const kv_pages *kv, ponder_seq_id seq)
{
    return kv->tables + (size_t)seq * (size_t)kv->max_blocks_seq;
}

static int32_t blocks_for(int32_t n_pos) { return (n_pos + KV_BLOCK_CELLS - 1) / KV_BLOCK_CELLS; }

static void block_release(kv_pages *kv, int32_t b)
{
    if (--kv->refs[b] == 0)
        kv->free_list[kv->n_free++] = b;
}

static int32_t block_take(kv_pages *kv)
{
    const int32_t b = kv->free_list[--kv->n_free];
    kv->refs[b] = 1;
    return b;
}

int32_t kv_blocks_needed(kv_pages *kv, const int32_t *n_new)
{
    int32_t need = 0;
    /* a shared tail written by w of its r holders costs w copies, or w - 1 if every holder
     * writes (the last one then owns it alone and writes in place) */
    for (int32_t s = 0; s < kv->n_seq; s++) {
        if (n_new[s] <= 0)
            continue;
        const int32_t len = kv->seq_len[s];
        need += blocks_for(len + n_new[s]) - blocks_for(len);
        if (len % KV_BLOCK_CELLS != 0)
            kv->writers[seq_table(kv, s)[len / KV_BLOCK_CELLS]]++;
    }
    for (int32_t s = 0; s < kv->n_seq; s++) {
        const int32_t len = kv->seq_len[s];
        if (n_new[s] <= 0 || len % KV_BLOCK_CELLS == 0)
            continue;
        const int32_t b = seq_table(kv, s)[len / KV_BLOCK_CELLS];
        const int32_t w = kv->writers[b];
        if (w == 0)
            continue; /* counted through an earlier sequence with the same tail */
        need += kv->refs[b] > 1 ? (w == kv->refs[b] ? w - 1 : w) : 0;
        kv->writers[b] = 0;
    }
    return need;
}

/* Copies every layer's K and V cells of block src into block dst. */
static void block_copy(ponder_context *ctx, int32_t dst, int32_t src)
{
    const size_t k_bytes = KV_BLOCK_CELLS * ctx->k_row_bytes, v_bytes = KV_BLOCK_CELLS * ctx->v_row_bytes;
    for (int il = 0; il < ctx->model->hp.n_layer; il++) {
        memcpy((char *)ctx->k_cache[il] + (size_t)dst * k_bytes, (const char *)ctx->k_cache[il] + (size_t)src * k_bytes,
               k_bytes);
        memcpy((char *)ctx->v_cache[il] + (size_t)dst * v_bytes, (const char *)ctx->v_cache[il] + (size_t)src * v_bytes,
               v_bytes);
    }
}

void kv_seq_reserve(ponder_context *ctx, ponder_seq_id seq, int32_t n_new)
{
    kv_pages *kv = &ctx->kv;
    int32_t *table = seq_table(kv, seq);
    const int32_t len = kv->seq_len[seq];
    if (n_new <= 0)
        return;
    if (len % KV_BLOCK_CELLS != 0) {
        const int32_t tail = table[len / KV_BLOCK_CELLS];
        if (kv->refs[tail] > 1) {
            const int32_t copy = block_take(kv);
            block_copy(ctx, copy, tail);
            kv->refs[tail]--; /* still held by another sequence: never reaches 0 here */
            table[len / KV_BLOCK_CELLS] = copy;
        }
    }
    for (int32_t b = blocks_for(len); b < blocks_for(len + n_new); b++)
        table[b] = block_take(kv);
}

void kv_seq_keep(kv_pages *kv, ponder_seq_id seq, int32_t n_keep)
{
    int32_t *table = seq_table(kv, seq);
    for (int32_t b = blocks_for(n_keep); b < blocks_for(kv->seq_len[seq]); b++)
        block_release(kv, table[b]);
    kv->seq_len[seq] = n_keep;
}

void kv_seq_share(kv_pages *kv, ponder_seq_id src, ponder_seq_id dst)
{
    const int32_t n = blocks_for(kv->seq_len[src]);
    memcpy(seq_table(kv, dst), seq_table(kv, src), (size_t)n * sizeof(int32_t));
    for (int32_t b = 0; b < n; b++)
        kv->refs[seq_table(kv, src)[b]]++;
    kv->seq_len[dst] = kv->seq_len[src];
}
