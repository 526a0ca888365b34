/*
 * Seeded batch streams over a subset. The stream keeps the subset's index
 * array (not a copy) and a permutation of its positions, reshuffled from
 * its own rng at the start of every epoch, so a run is reproducible from
 * the seed alone. No allocation after init.
 */
#include "lethe.h"
#include "core/fail.h"

#include <stdlib.h>
#include <string.h>

lethe_status lethe_stream_init(lethe_stream *s, const lethe_subset *sub, uint64_t seed)
{
    memset(s, 0, sizeof *s);
    if (!sub || sub->n == 0 || !sub->idx)
        return lethe_fail(LETHE_ERR_ARG, "batch stream over an empty subset");
    if (sub->n > INT32_MAX)
        return lethe_fail(LETHE_ERR_ARG, "batch stream over %zu indices (limit %d)", sub->n,
                          INT32_MAX);
    s->order = malloc(sub->n * sizeof *s->order); /* (n) positions into idx */
    if (!s->order)
        return lethe_fail(LETHE_ERR_NOMEM, "cannot allocate a stream of %zu indices", sub->n);
    s->idx = sub->idx;
    s->n = sub->n;
    for (size_t i = 0; i < s->n; i++) s->order[i] = (int32_t)i;
    lethe_rng_seed(&s->rng, seed);
    lethe_rng_shuffle(&s->rng, s->order, s->n);
    s->pos = 0;
    s->epoch = 0;
    return LETHE_OK;
}

/* Start the next epoch: a fresh shuffle (of the previous order, which is as
 * good as of the identity and saves a pass). */
static void new_epoch(lethe_stream *s)
{
    lethe_rng_shuffle(&s->rng, s->order, s->n);
    s->pos = 0;
    s->epoch++;
}

int lethe_stream_next(lethe_stream *s, int bs, int wrap, int32_t *out)
{
    if (bs <= 0 || s->n == 0) return 0;
    if (!wrap) {
        if (s->pos == s->n) new_epoch(s);
        size_t m = s->n - s->pos < (size_t)bs ? s->n - s->pos : (size_t)bs;
        for (size_t k = 0; k < m; k++) out[k] = s->idx[s->order[s->pos + k]];
        s->pos += m;
        return (int)m;
    }
    for (int k = 0; k < bs; k++) {
        if (s->pos == s->n) new_epoch(s);
        out[k] = s->idx[s->order[s->pos++]];
    }
    return bs;
}

void lethe_stream_free(lethe_stream *s)
{
    if (!s) return;
    free(s->order);
    memset(s, 0, sizeof *s);
}
