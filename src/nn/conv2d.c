/* 2-D convolution (cross-correlation, like PyTorch) lowered onto
 * cblas_sgemm with im2col, a chunk of samples at a time:
 *     col (CKK, cc)              CKK = C·KH·KW, cc = columns of m samples
 *     t   (OC, cc) = w (OC, CKK) · col
 *     out ← epilogue(t + bias): as is, ReLU, or ReLU then max pool.
 * Backward builds the chunk's output gradient in t's layout (undoing the
 * pool and the ReLU on the way, from the saved argmax and output); then
 *     dw  (OC, CKK) += t · colᵀ      (per sample group, see below)
 *     dcol (CKK, cc) = wᵀ · t   → col2im into din.
 *
 * Stride 1 runs on the padded grid: each sample's input planes are copied
 * once, zero-padded, into P (C, H + 2·pad, W + 2·pad); output pixel (y, x)
 * becomes column y·Wp + x (Wp = W + 2·pad), so that row (c, ki, kj) of col
 * is one contiguous slice of P (at ki·Wp + kj) and col2im adds contiguous
 * rows back into a padded dP. The columns x ≥ OW of each row are junk: the
 * epilogue skips them and backward feeds zeros there, so they add nothing.
 * They cost (Wp/OW − 1) more multiply-adds (14% at 14×14), far less than
 * the short-row copies they replace (OW floats at a time, CKK·OH of them
 * per sample: most of the time of the conv besides sgemm). Other strides
 * use the same layout without junk (t rows of OW), copied row by row.
 *
 * With 8 or more input channels even col is skipped: kernel position
 * k = (ki, kj) reads P itself at offset ki·Wp + kj (C rows of stride the
 * plane), so the forward is t = Σ_k wk[k] · P_k, computed by one direct
 * kernel (conv_direct.c: a register tile of output channels × columns
 * summed over every channel and position, written once); the input
 * gradient is the same kernel gathering t at the reversed shifts into a
 * padded dP (no dcol, no col2im); and, for OC ≤ 32, the weight gradient
 * is KH·KW sgemm products P_k · tᵀ. The kernel reads its weights packed
 * in its tiles' order (pack_weights, conv_direct_pack).
 *
 * Planes at most NARROW_MAX wide (resnet20's layer3: 8×8) give the
 * kernel compact copies instead of the padded grid (direct_narrow), so
 * that its tiles of columns hold no junk between rows.
 *
 * Stride 2 (3×3, pad 1) does the same on the input's four phase planes
 * (even/odd rows × even/odd columns, pad_phases): each kernel position
 * reads one phase plane at a fixed shift, as if the stride were 1.
 *
 * 3×3 stride-1 convs with planes at least 12 wide run as Winograd
 * F(2×2, 3×3) (winograd.h, conv_winograd.c): 16 products per chunk with
 * 2.25× fewer multiply-adds, the forward, input and weight gradients all
 * as the adjoints of the same linear maps. nn_conv_set_fast_paths(0)
 * turns Winograd and the phase planes off (stride 1 then runs the direct
 * kernel, stride 2 im2col), for tests and benchmarks.
 *
 * Why chunks and not one im2col of the whole batch: col of a whole batch is
 * CKK/OC times larger than the output (75 MB for 16→16 channels, 32×32,
 * batch 128), so writing it and reading it back is memory-bound and costs
 * more than the product. A chunk is one sample, or a few when planes are
 * small (so that sgemm gets ≥ CONV_COLS columns, where OpenBLAS runs near
 * its peak); col, t, P and the epilogue stay in L2. Chunks are split over
 * OpenMP threads, one parallel region per call, each thread with its own
 * slot of the workspace.
 *
 * Why the epilogue: a conv's output is the largest tensor of a step (conv1
 * of cnn: 12.8 MB at batch 128). Applied to t while it is in cache, bias,
 * ReLU and pooling cost no pass over memory, and with a pool the full-size
 * output is never written at all: backward rebuilds its gradient from the
 * pooled gradient, the argmax and the pooled output (> 0: the ReLU mask).
 *
 * Threading: each thread calls cblas_sgemm itself, so OpenBLAS must run
 * single-threaded inside (lethe_model_create sets a pthread OpenBLAS to one
 * thread; an OpenMP OpenBLAS does this by itself in a parallel region). If
 * a pthread OpenBLAS has several threads, the kernels here use one OpenMP
 * thread and let OpenBLAS parallelise each product instead.
 *
 * Groups (ALGORITHM.md §2.1): groups are contiguous sample ranges; runs of
 * neighbouring groups with the same dw and db destinations are processed
 * one after the other, chunks never straddle a run, so each run's dw is
 * exact. The chunks of a run form CONV_BLOCKS fixed blocks; a block sums
 * into its own partial dwᵀ and db, and the partials are added to dw[k],
 * db[k] in block order at the end of the run: deterministic whatever
 * thread ran which block, so blocks (and forward chunks) are handed out
 * dynamically and a thread slowed by another process takes fewer. */
#include "nn/layers.h"
#include "core/dist.h"
#include "nn/conv_direct.h"
#include "nn/winograd.h"

#include <cblas.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define CONV_SLOTS 16               /* most threads one conv call uses */
#define CONV_BLOCKS 8               /* blocks of chunks with their own dw partial */
#define CONV_COLS 192               /* sgemm columns a chunk aims for */
#define CONV_CHUNK_FLOATS (1 << 18) /* col + t + P of a multi-sample chunk: 1 MiB */
#define ROW_MAX 1024                /* longest padded input row */
#define WINO_TILES 256              /* Winograd tiles (product columns) a chunk aims for */
#define KK_MAX 49                   /* largest kernel (positions) of the direct kernel */
#define NARROW_MAX 12               /* widest plane the direct kernel reads compact copies of */

/* The short loops here would be turned into memcpy/memset calls by GCC,
 * which cost more than the copies themselves; keep them inline. */
#if defined(__GNUC__) && !defined(__clang__)
#define NN_NO_LIBCALLS __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define NN_NO_LIBCALLS
#endif

static size_t round16(size_t f) { return (f + 15) & ~(size_t)15; }

/* At least f floats, an odd number of 64-byte lines: 16 arrays this far
 * apart, written or read side by side (Winograd's 16 positions), fall in
 * 16 different cache sets. A multiple of 4 KiB (32 channels × 288 tiles)
 * put all 16 in one set of the 12-way L1: the transforms ran at half
 * speed, and so did a plain 16-stream copy (measured). */
static size_t set_spread(size_t f)
{
    f = round16(f);
    return (f / 16) % 2 ? f : f + 16;
}

/* Where row y of a plane starts: (y/2)·rp + (y odd)·ro. Row by row (rp =
 * 2·stride, ro = stride), or, for Winograd, even rows then odd rows (rp =
 * stride, ro = the even half). tl: the row length. */
typedef struct { int tl; size_t rp, ro; } plane_lay;

static inline size_t prow(const plane_lay *L, int y)
{
    return (size_t)(y >> 1) * L->rp + (size_t)(y & 1) * L->ro;
}

static plane_lay rows_of(int tl) { return (plane_lay){tl, 2 * (size_t)tl, (size_t)tl}; }

/* How one shape is lowered: a pure function of the shape, so that sizing
 * (nn_conv2d_workspace) and running always agree. */
typedef struct {
    int ckk, ohw;
    int padded;        /* stride 1: columns on the padded grid */
    int shift;         /* forward and dcol as KH·KW shifted products, no col */
    int shift_dw;      /* dw as KH·KW shifted products too */
    int wino;          /* Winograd F(2×2, 3×3): 16 products per chunk (winograd.h) */
    int poly;          /* stride 2 on four phase planes, as shifted products */
    size_t pps;        /* floats of P per sample (padded only) */
    /* Shifted products' input gradient (chunk_din): the interior of a
     * plane, drows rows of dcols values from dP[d0] (rows wp apart),
     * gathers the output gradient at j − shift, read from a copy with
     * dfront zeros before each row (the largest shift) and zeros after,
     * dlen floats a row. */
    size_t d0, dfront, dlen;
    int drows, dcols;
    int th, tx;        /* tile rows and tiles per row, junk included (wino only) */
    plane_lay tlay;    /* rows of an output plane within t */
    plane_lay play;    /* rows of a padded input plane P (padded only) */
    size_t vfl, mfl;   /* floats of a slot's col (V when wino) and M (wino only) */
    size_t vpos, mpos; /* floats between the 16 positions of V and of M (wino only) */
    int narrow;        /* shifted products on planes ≤ NARROW_MAX wide: the direct kernel on compact copies */
    size_t nfl;        /* floats of a slot's compact copies and output (narrow only) */
    int wp;            /* padded width (padded only) */
    int tl;            /* row stride of an output plane within t: Wp or OW */
    int compact;       /* padded, but t (and col) rows of OW: no junk columns (wide layers) */
    int cps;           /* columns per sample: OH·tl */
    size_t pplane;     /* floats of one padded plane P with slack (padded only) */
    int nb;            /* samples per chunk, at most */
    size_t cmax;       /* columns of a chunk, at most: nb·cps */
    size_t slot;       /* floats of one thread's slot */
} conv_geom;

/* The narrow path's room in a slot: `copies` compact copies (one per
 * column offset of the kernel, or with phase planes one per position) of
 * up to `qrows` rows of `w` values for `cm` channels, then the compact
 * output (cm, rows ≤ hh, w); qfl floats before it. */
typedef struct { int copies, qrows, hh, w; size_t cm, qfl, fl; } narrow_room;

static narrow_room narrow_room_of(const nn_conv_shape *s, int poly)
{
    narrow_room n;
    n.copies = poly ? s->kh * s->kw : s->kw;
    n.hh = s->h > s->oh ? s->h : s->oh;
    n.w = s->w > s->ow ? s->w : s->ow;
    n.qrows = n.hh + s->kh;
    n.cm = (size_t)(s->c > s->oc ? s->c : s->oc);
    n.qfl = round16((size_t)n.copies * n.cm * (size_t)n.qrows * (size_t)n.w);
    n.fl = n.qfl + round16(n.cm * (size_t)n.hh * (size_t)n.w);
    return n;
}

static conv_geom geom(const nn_conv_shape *s)
{
    conv_geom q;
    q.ckk = s->c * s->kh * s->kw;
    q.ohw = s->oh * s->ow;
    q.wp = s->w + 2 * s->pad;
    q.padded = s->stride == 1 && q.wp <= ROW_MAX;
    /* Reading P at the kernel positions' shifts (the direct kernel for the
     * forward and the input gradient) from 8 channels; fewer (a network's
     * first layer) measured faster as im2col and one sgemm. The weight
     * gradient as shifted sgemm products only up to 32 output channels:
     * 10-35% faster than im2col there, 60% slower at OC = 64, where
     * OpenBLAS runs the (C, OC, cps) shape poorly. */
    /* Wide layers on small planes (resnet18's layer3 and layer4: 256 to 512
     * channels on 8×8 and 4×4 planes): the direct kernel and the phase
     * planes stream all C·OC·KH·KW weights once a sample for a few dozen
     * columns (7-14 GF/s measured); im2col and one sgemm over a chunk of
     * samples read them once a chunk. Below 2^18 weights (every layer of
     * resnet8, resnet20, cnn) nothing changes. */
    const int wide = (size_t)s->c * s->oc * s->kh * s->kw > ((size_t)1 << 18) && q.ohw <= 64;
    q.shift = q.padded && s->c >= 8 && s->kh * s->kw <= KK_MAX && !wide;
    q.shift_dw = q.shift && s->oc <= 32;
    /* Winograd for 3×3 pad-1 kernels wherever the shifts would be read and
     * planes are at least 12 wide: 2.25× fewer multiply-adds, the
     * transforms cost a few adds per value (on 7×7 planes, 20 tiles for
     * 12¼ of output, it measured no faster than the direct kernel). Its
     * padded plane has whole 2×2 tiles; junk rows and columns are cut as
     * above. */
    q.wino = nn_conv_fast_paths() && q.shift && s->kh == 3 && s->kw == 3 && s->pad == 1 && s->ow >= 12 &&
             s->w + 4 <= ROW_MAX;
    if (q.wino) {
        q.shift = q.shift_dw = 0;
        q.th = (s->oh + 1) / 2;
        q.tx = (s->ow + 1) / 2 + 1;
        q.wp = 2 * q.tx;
        q.tl = q.wp;
        q.cps = 2 * q.th * q.tl;
        q.tlay = (plane_lay){q.tl, (size_t)q.tl, (size_t)q.th * q.tl};
        const size_t half = round16((size_t)(q.th + 1) * q.wp + 2);
        q.play = (plane_lay){q.wp, (size_t)q.wp, half};
        q.pplane = 2 * half;
        const size_t tiles = (size_t)q.th * q.tx;
        const size_t per = 16 * ((size_t)s->c + (size_t)s->oc) * tiles +
                           (size_t)s->oc * q.cps + (size_t)s->c * q.pplane;
        int nb = (int)((WINO_TILES + tiles - 1) / tiles);
        while (nb > 1 && per * (size_t)nb > CONV_CHUNK_FLOATS) nb--;
        if (nb > s->n) nb = s->n;
        q.nb = nb < 1 ? 1 : nb;
        q.cmax = (size_t)q.nb * q.cps;
        q.vpos = set_spread((size_t)s->c * q.nb * tiles);
        q.mpos = set_spread((size_t)s->oc * q.nb * tiles);
        q.vfl = 16 * q.vpos;
        q.mfl = 16 * q.mpos;
        q.pps = (size_t)s->c * q.pplane;
        q.poly = 0;
        q.narrow = 0;
        q.compact = 0;
        q.nfl = 0;
        q.d0 = q.dfront = q.dlen = 0;
        q.drows = q.dcols = 0;
        q.slot = q.vfl + q.mfl + round16((size_t)s->oc * q.cmax) + round16((size_t)q.nb * q.pps);
        return q;
    }
    q.th = q.tx = 0;
    /* Stride 2, 3×3 pad 1, as shifted products on the input's four phase
     * planes (even/odd rows × even/odd columns), each padded by a row on
     * top and a column on the left: input row 2·oy − 1 + ki is phase row
     * oy + ⌊(ki − 1)/2⌋ + 1 (pad_phases), so every kernel position reads
     * one phase plane at a fixed shift, as stride 1 does. Output rows have
     * one junk column (OW + 1 = the phase planes' width). Measured on
     * resnet8: 10-25% faster than im2col; not for 1×1 shortcuts, which read
     * one phase in four (a strided copy and one product are faster). */
    q.poly = nn_conv_fast_paths() && !wide && s->stride == 2 && s->c >= 8 && s->ow + 1 <= ROW_MAX &&
             s->kh == 3 && s->kw == 3 && s->pad == 1 &&
             s->oh == (s->h + 1) / 2 && s->ow == (s->w + 1) / 2;
    if (q.poly) {
        q.padded = q.shift = 1;
        q.shift_dw = s->oc <= 32;
        q.wp = s->ow + 1;
    }
    q.tl = q.padded ? q.wp : s->ow;
    q.cps = s->oh * q.tl;
    q.tlay = rows_of(q.tl);
    q.play = rows_of(q.wp);
    /* Slice (c, ki, kj) of P reads up to index Hp·Wp + KW − 2: zero slack;
     * a phase plane's last junk column reads one past it. */
    if (q.poly) q.pplane = round16((size_t)(s->oh + 1) * q.wp + 1);
    else q.pplane = q.padded ? round16((size_t)(s->h + 2 * s->pad) * q.wp + (size_t)s->kw) : 0;
    q.pps = (size_t)(q.poly ? 4 : 1) * s->c * q.pplane;
    q.d0 = q.dfront = q.dlen = 0;
    q.drows = q.dcols = 0;
    if (q.shift) {
        /* Phase planes: rows 1 … OH, columns 1 … OW; else the input's. */
        q.drows = q.poly ? s->oh : s->h;
        q.dcols = q.poly ? s->ow : s->w;
        const int pad = q.poly ? 1 : s->pad;
        q.d0 = (size_t)pad * q.wp + (size_t)pad;
        const size_t dn = (size_t)(q.drows - 1) * q.wp + (size_t)q.dcols;   /* first to last */
        q.dfront = q.poly ? (size_t)q.wp + 1 : (size_t)(s->kh - 1) * q.wp + (size_t)(s->kw - 1);
        q.dlen = round16(q.d0 + dn + q.dfront);
    }
    const size_t per = ((size_t)q.ckk + (size_t)s->oc) * (size_t)q.cps + q.pps;
    int nb = q.cps > 0 ? (CONV_COLS + q.cps - 1) / q.cps : 1;
    /* A wide layer's col is large (4,608 rows at 512 channels): 4 MiB a
     * chunk, so that its products still have ~CONV_COLS columns. */
    while (nb > 1 && per * (size_t)nb > (wide ? 4 : 1) * (size_t)CONV_CHUNK_FLOATS) nb--;
    if (nb > s->n) nb = s->n;
    q.nb = nb < 1 ? 1 : nb;
    /* A wide layer's im2col on the padded grid (stride 1) reads P without
     * the junk columns (t rows of OW): 33% of the products' columns at 4×4,
     * 20% at 8×8. The junk added nothing (zero output gradient there; its
     * input-gradient columns land on padding or add +0), so the values keep
     * their bits; nb stays as the padded layout sized it, so that a chunk's
     * weight-gradient sum runs over the same samples. (Not with fewer
     * than 8 channels, whose weight gradient reads P at the padded
     * grid's columns: conv_direct_dw in chunk_dw.) */
    q.compact = wide && q.padded && !q.shift && s->c >= 8;
    if (q.compact) {
        q.tl = s->ow;
        q.cps = q.ohw;
        q.tlay = rows_of(q.tl);
    }
    q.cmax = (size_t)q.nb * q.cps;
    /* col (CKK, cmax) | t (OC, cmax) | P (nb, C, pplane); 16-float aligned
     * so that threads share no cache line. */
    q.vfl = (size_t)q.ckk * q.cmax;
    if ((size_t)s->oc * q.dlen > q.vfl) q.vfl = (size_t)s->oc * q.dlen;  /* col or T' */
    q.mfl = 0;
    q.vpos = q.mpos = 0;
    /* Narrow planes (resnet20's layer3: 8×8, rows of 10 on the padded
     * grid): the direct kernel over the padded grid computes the junk
     * columns between rows too (78 columns for 64 values, 96 in tiles of
     * 32), so it runs on compact copies instead: for each column shift b
     * of the kernel, Q_b holds the rows of the grid from column b, w
     * values a row, and every position reads its Q_b at a row offset: 64
     * contiguous columns, two whole tiles. Each value is the same chain
     * of multiply-adds (conv_direct), so the bits do not change. Space:
     * KW copies (KH·KW on phase planes) of up to H + KH rows of the larger
     * channel count, and the compact output. */
    q.narrow = q.shift && s->ow <= NARROW_MAX && s->kh <= 3 && s->kw <= 3;
    q.nfl = q.narrow ? narrow_room_of(s, q.poly).fl : 0;
    q.slot = round16(q.vfl + (size_t)s->oc * q.cmax + (size_t)q.nb * q.pps + q.nfl);
    return q;
}

static int slots(const nn_conv_shape *s) { return s->n < CONV_SLOTS ? s->n : CONV_SLOTS; }

/* One block's partial gradients: db (OC doubles = 2·OC floats) | dwᵀ
 * (CKK, OC), or dU (16, OC, C) when wino; 16-float aligned. */
static size_t part_floats(const nn_conv_shape *s, const conv_geom *q)
{
    return round16(2 * (size_t)s->oc + (size_t)s->oc * (q->wino ? 16 * s->c : q->ckk));
}

/* Floats before the slots: the weights packed for the direct kernel
 * (conv_direct_pack: the forward's, or the input gradient's, one pack per
 * phase plane), or transformed, U (16, OC, C); then CONV_BLOCKS partial
 * gradients. */
static size_t wk_floats(const nn_conv_shape *s, const conv_geom *q)
{
    if (q->wino) return round16(16 * (size_t)s->oc * s->c);
    return q->shift ? round16((size_t)s->oc * q->ckk) : 0;
}

static size_t common_floats(const nn_conv_shape *s, const conv_geom *q)
{
    return wk_floats(s, q) + CONV_BLOCKS * part_floats(s, q);
}

/* Block b's partials: dwᵀ (CKK, OC) and db (OC). */
static float *part_dwt(const nn_conv_shape *s, const conv_geom *q, float *ws, int b)
{
    return ws + wk_floats(s, q) + (size_t)b * part_floats(s, q) + 2 * (size_t)s->oc;
}

static double *part_db(const nn_conv_shape *s, const conv_geom *q, float *ws, int b)
{
    return (double *)(void *)(ws + wk_floats(s, q) + (size_t)b * part_floats(s, q));
}

size_t nn_conv2d_workspace(const nn_conv_shape *s)
{
    if (s->n <= 0 || s->oh <= 0 || s->ow <= 0) return 0;
    const conv_geom q = geom(s);
    return common_floats(s, &q) + (size_t)slots(s) * q.slot;
}

/* Pointers into one thread's slot. */
typedef struct { float *col, *m, *t, *p, *nar; } conv_slot;

/* col (V when wino) | M (wino) | t | P | compact copies (narrow). */
static conv_slot slot_at(const nn_conv_shape *s, const conv_geom *q, float *ws, int id)
{
    float *p = ws + common_floats(s, q) + (size_t)id * q->slot;
    conv_slot sl;
    sl.col = p;
    sl.m = sl.col + q->vfl;
    sl.t = sl.m + q->mfl;
    sl.p = sl.t + (q->wino ? round16((size_t)s->oc * q->cmax) : (size_t)s->oc * q->cmax);
    sl.nar = sl.p + (size_t)q->nb * q->pps;
    return sl;
}

/* How a range of `n` samples is cut: `threads` threads, `nb` samples per
 * chunk, `chunks` chunks (at least one per thread when there are enough). */
typedef struct { int threads, nb, chunks; } conv_plan;

static conv_plan plan(const nn_conv_shape *s, const conv_geom *q, int n)
{
    conv_plan p;
    int t = nn_outer_threads();
    if (t > slots(s)) t = slots(s);
    if (t > n) t = n;
    if (t < 1) t = 1;
    int nb = q->nb, even = (n + t - 1) / t;
    if (nb > even) nb = even;
    p.threads = t;
    p.nb = nb;
    p.chunks = (n + nb - 1) / nb;
    return p;
}

/* ----------------------------------------------------- padded lowering */

/* The affine map (and ReLU) of one input plane, or none. */
typedef struct { int on, relu; float ga, be, mf, isf; } aff1;

static aff1 aff_of(const nn_affine *af, int sample, int c, int nc)
{
    if (!af) return (aff1){0, 0, 1.0f, 0.0f, 0.0f, 1.0f};
    const nn_affine_plane P = nn_affine_at(af, sample, c, nc);
    return (aff1){1, af->relu, P.ga, P.be, P.mf, P.isf};
}

/* d[x] = A(s[x·st]) for x < n: a copy, or batch norm's very operations. */
static inline void copy_row(float *restrict d, const float *restrict s, int n, int st,
                            const aff1 *A)
{
    if (!A->on) {
#pragma omp simd
        for (int x = 0; x < n; x++) d[x] = s[x * st];
        return;
    }
    const float ga = A->ga, be = A->be, mf = A->mf, isf = A->isf;
    if (A->relu) {
#pragma omp simd
        for (int x = 0; x < n; x++) {
            const float v = nn_bn_y(s[x * st], ga, be, mf, isf);
            d[x] = v > 0.0f ? v : 0.0f;
        }
    } else {
#pragma omp simd
        for (int x = 0; x < n; x++) d[x] = nn_bn_y(s[x * st], ga, be, mf, isf);
    }
}

/* P (m, C, pplane) ← in (m, C, H, W) zero-padded, with zeroed slack. */
static NN_NO_LIBCALLS void pad_planes(float *restrict P, const float *restrict in,
                                      const nn_conv_shape *s, const conv_geom *q, int m,
                                      const nn_affine *af, int a)
{
    const int wp = q->wp, pad = s->pad, w = s->w;
    for (int pl = 0; pl < m * s->c; pl++) {
        float *d = P + (size_t)pl * q->pplane;
        const float *src = in + (size_t)pl * s->h * w;
        const aff1 A = aff_of(af, a + pl / s->c, pl % s->c, s->c);
#pragma omp simd
        for (int x = 0; x < pad * wp; x++) d[x] = 0.0f;
        float *r = d + (size_t)pad * wp;
        for (int y = 0; y < s->h; y++, r += wp) {
            for (int x = 0; x < pad; x++) r[x] = 0.0f;
            copy_row(r + pad, src + (size_t)y * w, w, 1, &A);
            for (int x = pad + w; x < wp; x++) r[x] = 0.0f;
        }
        const int tail = (int)(d + q->pplane - r);
#pragma omp simd
        for (int x = 0; x < tail; x++) r[x] = 0.0f;
    }
}

/* Winograd's P (m, C, pplane) ← in zero-padded by one, even padded rows
 * first, then odd ones, each half with zeroed slack (q->play). */
static NN_NO_LIBCALLS void pad_planes_split(float *restrict P, const float *restrict in,
                                            const nn_conv_shape *s, const conv_geom *q, int m,
                                            const nn_affine *af, int a)
{
    const int wp = q->wp, w = s->w, rows = 2 * q->th + 2;
    const size_t half = q->play.ro;
    for (int pl = 0; pl < m * s->c; pl++) {
        float *d = P + (size_t)pl * q->pplane;
        const float *src = in + (size_t)pl * s->h * w;
        const aff1 A = aff_of(af, a + pl / s->c, pl % s->c, s->c);
        for (int y = 0; y < rows; y++) {
            float *r = d + prow(&q->play, y);
            if (y < 1 || y > s->h) {
#pragma omp simd
                for (int x = 0; x < wp; x++) r[x] = 0.0f;
                continue;
            }
            r[0] = 0.0f;
            copy_row(r + 1, src + (size_t)(y - 1) * w, w, 1, &A);
            for (int x = 1 + w; x < wp; x++) r[x] = 0.0f;
        }
        for (int hf = 0; hf < 2; hf++)
            for (size_t x = (size_t)(q->th + 1) * wp; x < half; x++) d[hf * half + x] = 0.0f;
    }
}

/* Where kernel position k = (ki, kj) reads within a sample's P (channel
 * c at + c·pplane): its padded plane at ki·Wp + kj, or for stride 2 its
 * phase plane (row parity of ki − pad, column parity of kj − pad) at
 * ⌊(ki − pad)/2⌋ + 1 rows and ⌊(kj − pad)/2⌋ + 1 columns. */
static int tap_phase(const nn_conv_shape *s, const conv_geom *q, int k)
{
    if (!q->poly) return 0;
    const int r = k / s->kw - s->pad + 2, c = k % s->kw - s->pad + 2;  /* + 2: ≥ 0 */
    return 2 * (r & 1) + (c & 1);
}

/* The shift of kernel position k within its (phase) plane. */
static size_t tap_in(const nn_conv_shape *s, const conv_geom *q, int k)
{
    const int ki = k / s->kw, kj = k % s->kw;
    if (!q->poly) return (size_t)ki * q->wp + kj;
    return (size_t)((ki - s->pad + 2) / 2) * q->wp + (size_t)((kj - s->pad + 2) / 2);
}

static size_t tap_off(const nn_conv_shape *s, const conv_geom *q, int k)
{
    return (size_t)tap_phase(s, q, k) * s->c * q->pplane + tap_in(s, q, k);
}

/* w (OC, C, KH, KW) packed for the direct kernel into wk (C·OC·KH·KW
 * floats): the forward's sums (input channels c, output channels o, every
 * position), or (back) the input gradient's (input: the output channels,
 * output: the channels c), one pack per phase plane of the positions
 * that read it (tap_phase), one after the other. */
static void pack_weights(float *wk, const float *w, const nn_conv_shape *s, const conv_geom *q,
                         int back)
{
    const int kk = s->kh * s->kw;
    const size_t ckk = (size_t)s->c * kk;
    if (!back) {
        size_t tap[KK_MAX];
        for (int k = 0; k < kk; k++) tap[k] = (size_t)k;
        conv_direct_pack(wk, s->c, s->oc, kk, w, (size_t)kk, ckk, tap);
        return;
    }
    for (int ph = 0; ph < (q->poly ? 4 : 1); ph++) {
        size_t tap[KK_MAX];
        int n = 0;
        for (int k = 0; k < kk; k++)
            if (tap_phase(s, q, k) == ph) tap[n++] = (size_t)k;
        conv_direct_pack(wk, s->oc, s->c, n, w, ckk, (size_t)kk, tap);
        wk += (size_t)s->oc * s->c * n;
    }
}


/* Stride 2: P (m, 4, C, pplane) ← the phase planes of in, phase
 * 2·(row parity) + column parity: row a + 1, column b + 1 of phase (pr, pc)
 * holds in[2a + pr][2b + pc]; the top row, the left column, rows and
 * columns past the input and the slack are zero. */
static NN_NO_LIBCALLS void pad_phases(float *restrict P, const float *restrict in,
                                      const nn_conv_shape *s, const conv_geom *q, int m,
                                      const nn_affine *af, int a0)
{
    const int wp = q->wp, rows = s->oh + 1;
    for (int i = 0; i < m; i++)
        for (int ph = 0; ph < 4; ph++) {
            const int pr = ph >> 1, pc = ph & 1;
            const int nr = (s->h - pr + 1) / 2, nc = (s->w - pc + 1) / 2;
            for (int c = 0; c < s->c; c++) {
                float *d = P + (size_t)i * q->pps + ((size_t)ph * s->c + c) * q->pplane;
                const float *src = in + ((size_t)i * s->c + c) * s->h * s->w;
                const aff1 A = aff_of(af, a0 + i, c, s->c);
                for (int x = 0; x < wp; x++) d[x] = 0.0f;
                for (int a = 0; a < rows - 1; a++) {
                    float *r = d + (size_t)(a + 1) * wp;
                    if (a >= nr) {
                        for (int x = 0; x < wp; x++) r[x] = 0.0f;
                        continue;
                    }
                    r[0] = 0.0f;
                    copy_row(r + 1, src + (size_t)(2 * a + pr) * s->w + pc, nc, 2, &A);
                    for (int x = 1 + nc; x < wp; x++) r[x] = 0.0f;
                }
                for (size_t x = (size_t)rows * wp; x < q->pplane; x++) d[x] = 0.0f;
            }
        }
}

/* din (C, H, W) (+= when add, else =) ← the phase planes dP (4, C, pplane)
 * of one sample, interleaved back. */
static NN_NO_LIBCALLS void phases_put(float *restrict din, int add, const float *restrict dP,
                                      const nn_conv_shape *s, const conv_geom *q)
{
    for (int ph = 0; ph < 4; ph++) {
        const int pr = ph >> 1, pc = ph & 1;
        const int nr = (s->h - pr + 1) / 2, nc = (s->w - pc + 1) / 2;
        for (int c = 0; c < s->c; c++) {
            const float *pl = dP + ((size_t)ph * s->c + c) * q->pplane;
            float *o = din + (size_t)c * s->h * s->w;
            for (int a = 0; a < nr; a++) {
                const float *r = pl + (size_t)(a + 1) * q->wp + 1;
                float *oy = o + (size_t)(2 * a + pr) * s->w + pc;
                if (add) {
#pragma omp simd
                    for (int b = 0; b < nc; b++) oy[2 * b] += r[b];
                } else {
#pragma omp simd
                    for (int b = 0; b < nc; b++) oy[2 * b] = r[b];
                }
            }
        }
    }
}

/* P of samples [a, a + m) (in points at sample a), as the lowering reads
 * it, normalised on the way when af. */
static void fill_p(float *P, const float *in, const nn_conv_shape *s, const conv_geom *q, int m,
                   const nn_affine *af, int a)
{
    if (q->wino) pad_planes_split(P, in, s, q, m, af, a);
    else if (q->poly) pad_phases(P, in, s, q, m, af, a);
    else pad_planes(P, in, s, q, m, af, a);
}

int nn_conv2d_takes_affine(const nn_conv_shape *s)
{
    return s->n > 0 && s->oh > 0 && s->ow > 0 && geom(s).padded;
}

/* col (CKK, m·cps): row (c, ki, kj), sample i = P[i, c] from ki·Wp + kj,
 * OH rows of tl (q.compact: only the OW columns of each row). */
static NN_NO_LIBCALLS void im2col_padded(float *restrict col, const float *restrict P,
                                         const nn_conv_shape *s, const conv_geom *q, int m)
{
    const size_t cc = (size_t)m * q->cps;
    for (int c = 0; c < s->c; c++)
        for (int ki = 0; ki < s->kh; ki++)
            for (int kj = 0; kj < s->kw; kj++) {
                float *row = col + ((size_t)(c * s->kh + ki) * s->kw + kj) * cc;
                for (int i = 0; i < m; i++) {
                    const float *src = P + (size_t)i * q->pps + (size_t)c * q->pplane +
                                       tap_off(s, q, ki * s->kw + kj);
                    float *d = row + (size_t)i * q->cps;
                    if (!q->compact) {
#pragma omp simd
                        for (int j = 0; j < q->cps; j++) d[j] = src[j];
                        continue;
                    }
                    for (int y = 0; y < s->oh; y++, d += s->ow, src += q->wp)
#pragma omp simd
                        for (int x = 0; x < s->ow; x++) d[x] = src[x];
                }
            }
}

/* din (C, H, W) (+= when add, else =) ← the interior of dP (C, pplane). */
static NN_NO_LIBCALLS void interior_put(float *restrict din, int add, const float *restrict dP,
                                        const nn_conv_shape *s, const conv_geom *q)
{
    for (int c = 0; c < s->c; c++) {
        float *o = din + (size_t)c * s->h * s->w;
        const float *pl = dP + (size_t)c * q->pplane;
        for (int y = 0; y < s->h; y++) {
            const float *r = pl + prow(&q->play, y + s->pad) + s->pad;
            float *oy = o + (size_t)y * s->w;
            if (add) {
#pragma omp simd
                for (int x = 0; x < s->w; x++) oy[x] += r[x];
            } else {
#pragma omp simd
                for (int x = 0; x < s->w; x++) oy[x] = r[x];
            }
        }
    }
}

/* din (m, C, H, W) (+= when add, else =) ← col2im(dcol (CKK, m·cps)),
 * summed in dP (one padded plane at a time, then its interior). */
static NN_NO_LIBCALLS void col2im_padded(float *restrict din, int add,
                                         const float *restrict dcol, float *restrict dP,
                                         const nn_conv_shape *s, const conv_geom *q, int m)
{
    const size_t cc = (size_t)m * q->cps;
    for (int i = 0; i < m; i++)
        for (int c = 0; c < s->c; c++) {
#pragma omp simd
            for (size_t x = 0; x < q->pplane; x++) dP[x] = 0.0f;
            for (int ki = 0; ki < s->kh; ki++)
                for (int kj = 0; kj < s->kw; kj++) {
                    const float *src = dcol + ((size_t)(c * s->kh + ki) * s->kw + kj) * cc +
                                       (size_t)i * q->cps;
                    float *d = dP + (size_t)ki * q->wp + kj;
                    if (!q->compact) {
#pragma omp simd
                        for (int j = 0; j < q->cps; j++) d[j] += src[j];
                        continue;
                    }
                    for (int y = 0; y < s->oh; y++, d += q->wp, src += s->ow)
#pragma omp simd
                        for (int x = 0; x < s->ow; x++) d[x] += src[x];
                }
            float *o = din + ((size_t)i * s->c + c) * s->h * s->w;
            for (int y = 0; y < s->h; y++) {
                const float *r = dP + (size_t)(y + s->pad) * q->wp + s->pad;
                float *oy = o + (size_t)y * s->w;
                if (add) {
#pragma omp simd
                    for (int x = 0; x < s->w; x++) oy[x] += r[x];
                } else {
#pragma omp simd
                    for (int x = 0; x < s->w; x++) oy[x] = r[x];
                }
            }
        }
}

/* ---------------------------------------------------- strided lowering */

/* Padded row length that output columns 0..OW−1 of every kernel column
 * read: ox·stride + kj < (OW − 1)·stride + KW. */
static int padded_row(const nn_conv_shape *s) { return (s->ow - 1) * s->stride + s->kw; }

/* Input row of W floats, padded: row[x] = src[x − pad] inside, 0 outside. */
static inline void pad_row(float *restrict row, const float *restrict src, int pad, int w, int len)
{
    int a = pad < len ? pad : len, b = pad + w < len ? pad + w : len;
    for (int x = 0; x < a; x++) row[x] = 0.0f;
    for (int x = a; x < b; x++) row[x] = src[x - pad];
    for (int x = b; x < len; x++) row[x] = 0.0f;
}

/* in (m, C, H, W) → col (CKK, m·OH·OW) for any stride; zero where the
 * window hits padding. Each input row is copied once into a padded row
 * buffer, from which the KW kernel columns are read without bounds tests. */
static NN_NO_LIBCALLS void im2col_rows(float *restrict col, const float *restrict in,
                                       const nn_conv_shape *s, int m)
{
    const int ohw = s->oh * s->ow, ow = s->ow, st = s->stride, kw = s->kw;
    const int len = padded_row(s);
    const size_t cc = (size_t)m * ohw;
    float row[ROW_MAX];
    for (int n = 0; n < m; n++) {
        for (int c = 0; c < s->c; c++) {
            const float *plane = in + ((size_t)n * s->c + c) * s->h * s->w;
            for (int ki = 0; ki < s->kh; ki++) {
                float *base = col + (size_t)(c * s->kh + ki) * kw * cc + (size_t)n * ohw;
                for (int oy = 0; oy < s->oh; oy++) {
                    const int iy = oy * st - s->pad + ki;
                    if (iy < 0 || iy >= s->h || len > ROW_MAX) {
                        for (int kj = 0; kj < kw; kj++) {
                            float *d = base + (size_t)kj * cc + (size_t)oy * ow;
                            for (int ox = 0; ox < ow; ox++) {
                                const int ix = ox * st - s->pad + kj;
                                d[ox] = (iy >= 0 && iy < s->h && ix >= 0 && ix < s->w)
                                            ? plane[(size_t)iy * s->w + ix] : 0.0f;
                            }
                        }
                        continue;
                    }
                    pad_row(row, plane + (size_t)iy * s->w, s->pad, s->w, len);
                    for (int kj = 0; kj < kw; kj++) {
                        float *d = base + (size_t)kj * cc + (size_t)oy * ow;
                        const float *r = row + kj;
#pragma omp simd
                        for (int ox = 0; ox < ow; ox++) d[ox] = r[ox * st];
                    }
                }
            }
        }
    }
}

/* din (m, C, H, W) (+= when add, else =) ← col2im(dcol (CKK, m·OH·OW)). */
static NN_NO_LIBCALLS void col2im_rows(float *restrict din, int add, const float *restrict dcol,
                                       const nn_conv_shape *s, int m)
{
    const int ohw = s->oh * s->ow, ow = s->ow, st = s->stride;
    const size_t cc = (size_t)m * ohw;
    if (!add) memset(din, 0, sizeof(float) * (size_t)m * s->c * s->h * s->w);
    for (int n = 0; n < m; n++)
        for (int c = 0; c < s->c; c++) {
            float *plane = din + ((size_t)n * s->c + c) * s->h * s->w;
            for (int ki = 0; ki < s->kh; ki++)
                for (int kj = 0; kj < s->kw; kj++) {
                    const float *src = dcol + ((size_t)(c * s->kh + ki) * s->kw + kj) * cc +
                                       (size_t)n * ohw;
                    /* Output columns whose input column ox·st − pad + kj is in [0, W). */
                    const int off = kj - s->pad;
                    int x0 = off >= 0 ? 0 : (-off + st - 1) / st;
                    int x1 = s->w - 1 - off < 0 ? 0 : (s->w - 1 - off) / st + 1;
                    if (x1 > ow) x1 = ow;
                    for (int oy = 0; oy < s->oh; oy++) {
                        const int iy = oy * st - s->pad + ki;
                        if (iy < 0 || iy >= s->h) continue;
                        const float *d = src + (size_t)oy * ow;
                        float *r = plane + (size_t)iy * s->w + off;
#pragma omp simd
                        for (int ox = x0; ox < x1; ox++) r[ox * st] += d[ox];
                    }
                }
        }
}

/* ------------------------------------------------------ narrow planes */

/* d[y·ds + x] = s[y·ss + x] for y < rows, x < w (short rows: no libcalls). */
static NN_NO_LIBCALLS void copy_rows(float *restrict d, size_t ds, const float *restrict s,
                                     size_t ss, int rows, int w)
{
    for (int y = 0; y < rows; y++, d += ds, s += ss)
#pragma omp simd
        for (int x = 0; x < w; x++) d[x] = s[x];
}

/* conv_direct_rows's sums, out[o·ocs + y·rs + x] for y < rows, x < w, on
 * compact copies (q.narrow, see geom). Position k's shift toff[k] =
 * r·rs + b reads row r + y, column b + x of the grid; Q_b (nin, qrows, w)
 * holds the rows of the grid that positions with column offset b read,
 * from column b, w values a row, so that position k reads Q_b at
 * (r − r0_b)·w: rows·w contiguous columns. The compact result goes to ob
 * (nout, rows·w), then into out's rows. Returns 0, having done nothing,
 * when the shifts need more than `ncopy` copies or more than `qrmax` rows
 * a copy (the caller then runs conv_direct_rows). */
static int direct_narrow(float *out, size_t ocs, int nout, int rows, int w, size_t rs,
                         const float *in, size_t ics, int nin, const size_t *toff,
                         const float *wp, int kk, float *Q, float *ob, int ncopy, int qrmax)
{
    size_t bs[9];
    int r0[9], r1[9], nb = 0, which[KK_MAX], rk[KK_MAX];
    if (ncopy > 9 || kk > KK_MAX) return 0;
    for (int k = 0; k < kk; k++) {
        const size_t b = toff[k] % rs;
        const int r = (int)(toff[k] / rs);
        /* The same column offset within a few rows: the same copy. (On
         * phase planes two positions can share b in planes far apart.) */
        int i = 0;
        while (i < nb && !(bs[i] == b && r >= r0[i] - 3 && r <= r1[i] + 3)) i++;
        if (i == nb) {
            if (nb == ncopy) return 0;
            bs[nb] = b;
            r0[nb] = r1[nb] = r;
            nb++;
        }
        if (r < r0[i]) r0[i] = r;
        if (r > r1[i]) r1[i] = r;
        which[k] = i;
        rk[k] = r;
    }
    int qrows = 0;
    for (int i = 0; i < nb; i++)
        if (r1[i] - r0[i] + rows > qrows) qrows = r1[i] - r0[i] + rows;
    if (qrows > qrmax) return 0;
    const size_t qcs = (size_t)qrows * w;   /* a channel of a copy */
    for (int i = 0; i < nb; i++)
        for (int c = 0; c < nin; c++)
            copy_rows(Q + ((size_t)i * nin + c) * qcs, (size_t)w,
                      in + (size_t)c * ics + bs[i] + (size_t)r0[i] * rs, rs, r1[i] - r0[i] + rows, w);
    size_t toff2[KK_MAX];
    for (int k = 0; k < kk; k++)
        toff2[k] = (size_t)which[k] * nin * qcs + (size_t)(rk[k] - r0[which[k]]) * w;
    const int n = rows * w;
    conv_direct(ob, (size_t)n, nout, n, Q, qcs, nin, toff2, wp, kk);
    for (int o = 0; o < nout; o++)
        copy_rows(out + (size_t)o * ocs, rs, ob + (size_t)o * n, (size_t)w, rows, w);
    return 1;
}

/* The direct kernel's sums as conv_direct_rows, on compact copies where
 * the geometry has room for them and the rows are not whole vectors
 * (those conv_direct_rows already runs without junk: 8×8 with AVX2). */
static void direct_rows(const nn_conv_shape *s, const conv_geom *q, const conv_slot *sl,
                        float *out, size_t ocs, int nout, int rows, int w, size_t rs,
                        const float *in, size_t ics, int nin, const size_t *toff,
                        const float *wp, int kk)
{
    if (q->narrow && (CONV_DIRECT_VW == 0 || w % CONV_DIRECT_VW != 0)) {
        const narrow_room n = narrow_room_of(s, q->poly);
        if (w <= n.w && rows <= n.hh && (size_t)nin <= n.cm && (size_t)nout <= n.cm &&
            direct_narrow(out, ocs, nout, rows, w, rs, in, ics, nin, toff, wp, kk, sl->nar,
                          sl->nar + n.qfl, n.copies, n.qrows))
            return;
    }
    conv_direct_rows(out, ocs, nout, rows, w, rs, in, ics, nin, toff, wp, kk);
}

/* ------------------------------------------------------------ epilogue */

static inline float relu1(float v) { return v > 0.0f ? v : 0.0f; }

static int pooled(int x, int k, int st) { return (x - k) / st + 1; }

/* One plane: o (OH, OW) = src (OH rows of stride tl) + bias, then the ReLU
 * if asked. o may be src when tl = OW. */
static void plane_bias(float *o, const float *src, float bias, int relu, int oh, int ow,
                       plane_lay L)
{
    for (int y = 0; y < oh; y++) {
        float *oy = o + (size_t)y * ow;
        const float *sy = src + prow(&L, y);
        if (relu) {
#pragma omp simd
            for (int x = 0; x < ow; x++) oy[x] = relu1(sy[x] + bias);
        } else {
#pragma omp simd
            for (int x = 0; x < ow; x++) oy[x] = sy[x] + bias;
        }
    }
}

/* 2×2 stride 2 pool of one plane of relu?(src + bias): src (OH rows of
 * stride tl) → o, a (PH, PW), a holding y·OW + x. The same float
 * operations as bias, nn_relu_forward and nn_maxpool_forward one after the
 * other (strict >, the first maximum in scan order wins), without branches
 * so that it vectorises. */
static inline __attribute__((always_inline)) void
pool2_plane(float *restrict o, int32_t *restrict a, const float *restrict src, float bias,
            const int relu, int ow, plane_lay L, int ph, int pw)
{
    for (int py = 0; py < ph; py++) {
        const float *r0 = src + (size_t)py * L.rp, *r1 = r0 + L.ro;
        float *op = o + (size_t)py * pw;
        int32_t *ap = a + (size_t)py * pw;
        const int32_t base = 2 * py * ow;
#pragma omp simd
        for (int px = 0; px < pw; px++) {
            float v0 = r0[2 * px] + bias, v1 = r0[2 * px + 1] + bias;
            float v2 = r1[2 * px] + bias, v3 = r1[2 * px + 1] + bias;
            if (relu) {
                v0 = relu1(v0);
                v1 = relu1(v1);
                v2 = relu1(v2);
                v3 = relu1(v3);
            }
            const int32_t p0 = base + 2 * px;
            float m = v0;
            int32_t p = p0;
            p = v1 > m ? p0 + 1 : p;
            m = v1 > m ? v1 : m;
            p = v2 > m ? p0 + ow : p;
            m = v2 > m ? v2 : m;
            p = v3 > m ? p0 + ow + 1 : p;
            m = v3 > m ? v3 : m;
            op[px] = m;
            ap[px] = p;
        }
    }
}

/* Any k×k, stride st pool of one plane of relu?(src + bias). */
static void pool_plane(float *o, int32_t *a, const float *src, float bias, int relu,
                       int ow, plane_lay L, int k, int st, int ph, int pw)
{
    for (int py = 0; py < ph; py++) {
        for (int px = 0; px < pw; px++) {
            int best = py * st * ow + px * st;
            float m = src[prow(&L, py * st) + (size_t)px * st] + bias;
            if (relu) m = relu1(m);
            for (int ki = 0; ki < k; ki++) {
                for (int kj = 0; kj < k; kj++) {
                    const int y = py * st + ki, x = px * st + kj;
                    float v = src[prow(&L, y) + x] + bias;
                    if (relu) v = relu1(v);
                    if (v > m) {
                        m = v;
                        best = y * ow + x;
                    }
                }
            }
            o[py * pw + px] = m;
            a[py * pw + px] = best;
        }
    }
}

/* in (N, C, H, W), w (OC, C, KH, KW), b (OC) or NULL → out: (N, OC, OH, OW),
 * or (N, OC, PH, PW) with arg (N, OC, PH, PW) when the epilogue pools;
 * ws: nn_conv2d_workspace(s) floats. */
void nn_conv2d_forward_ex(float *out, int32_t *arg, const float *in, const float *w,
                          const float *b, const nn_conv_shape *s, const nn_epilogue *ep,
                          float *ws)
{
    if (s->n <= 0 || s->oh <= 0 || s->ow <= 0 || s->oc <= 0) return;
    const int relu = ep && ep->relu, pk = ep ? ep->pool_k : 0, ps = ep ? ep->pool_s : 0;
    const int pool = pk > 0 && ps > 0 && s->oh >= pk && s->ow >= pk;
    const int ph = pool ? pooled(s->oh, pk, ps) : s->oh, pw = pool ? pooled(s->ow, pk, ps) : s->ow;
    const conv_geom q = geom(s);
    const int phw = ph * pw;
    const size_t in_plane = (size_t)s->c * s->h * s->w, out_plane = (size_t)s->oc * phw;
    conv_plan p = plan(s, &q, s->n);
    if (core_dist_plan_active()) {
        /* --deterministic: a product's bits depend on how many samples
         * share it (its last, partial tile of columns), so one sample a
         * chunk: each sample's output is the same whatever the batch. */
        p.nb = 1;
        p.chunks = s->n;
    }
    const nn_affine *af = ep ? ep->in_affine : NULL;   /* needs q.padded (the caller's word) */
    /* One sample, no pool, no junk columns: t's layout is the output's. */
    const int direct = !pool && !q.padded && p.nb == 1;
    float *wk = ws;
    if (q.shift) pack_weights(wk, w, s, &q, 0);
    if (q.wino) wino_weights(wk, w, s->oc, s->c);
    size_t toff[KK_MAX];
    for (int k = 0; q.shift && k < s->kh * s->kw; k++) toff[k] = tap_off(s, &q, k);
#pragma omp parallel num_threads(p.threads)
    {
        const conv_slot sl = slot_at(s, &q, ws, nn_thread_id());
        /* Dynamic: chunks write disjoint outputs, so any thread may take any
         * chunk, and a thread slowed by another process takes fewer. */
#pragma omp for schedule(dynamic, 1)
        for (int c = 0; c < p.chunks; c++) {
            const int a = c * p.nb, m = s->n - a < p.nb ? s->n - a : p.nb;
            const int cc = m * q.cps;
            const float *x = in + (size_t)a * in_plane;
            float *dst = direct ? out + (size_t)a * out_plane : sl.t;
            if (q.wino) {
                /* V ← Bᵀ d B per tile, M_k = U_k · V_k for the 16
                 * positions k, t ← Aᵀ M A. */
                const int tiles = q.th * q.tx, nt = m * tiles;
                fill_p(sl.p, x, s, &q, m, af, a);
                for (int i = 0; i < m; i++)
                    wino_input(sl.col, q.vpos, s->c, nt, i * tiles,
                               sl.p + (size_t)i * s->c * q.pplane, q.pplane, q.wp, q.play.ro,
                               tiles);
                for (int k = 0; k < 16; k++)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->oc, nt, s->c, 1.0f,
                                wk + (size_t)k * s->oc * s->c, s->c, sl.col + (size_t)k * q.vpos,
                                nt, 0.0f, sl.m + (size_t)k * q.mpos, nt);
                for (int i = 0; i < m; i++)
                    wino_output(dst + (size_t)i * q.cps, (size_t)cc, q.tlay.ro, sl.m, q.mpos,
                                s->oc, nt, i * tiles, tiles);
            } else if (q.shift) {
                /* t (OC, cps) of sample i = Σ_k wt[k]ᵀ · P_i shifted by kernel
                 * position k (C rows of stride pplane), in one direct kernel:
                 * no col at all. */
                fill_p(sl.p, x, s, &q, m, af, a);
                for (int i = 0; i < m; i++)
                    direct_rows(s, &q, &sl, dst + (size_t)i * q.cps, (size_t)cc, s->oc, s->oh,
                                s->ow, (size_t)q.tl, sl.p + (size_t)i * q.pps, q.pplane, s->c,
                                toff, wk, s->kh * s->kw);
            } else {
                if (q.padded) {
                    fill_p(sl.p, x, s, &q, m, af, a);
                    im2col_padded(sl.col, sl.p, s, &q, m);
                } else {
                    im2col_rows(sl.col, x, s, m);
                }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->oc, cc, q.ckk,
                            1.0f, w, q.ckk, sl.col, cc, 0.0f, dst, cc);
            }
            for (int i = 0; i < m; i++) {
                for (int oc = 0; oc < s->oc; oc++) {
                    const float *src = dst + (size_t)oc * cc + (size_t)i * q.cps;
                    const size_t o = (size_t)(a + i) * out_plane + (size_t)oc * phw;
                    const float bias = b ? b[oc] : 0.0f;
                    if (!pool) {
                        if (b || relu || !direct)
                            plane_bias(out + o, src, bias, relu, s->oh, s->ow, q.tlay);
                        /* While the plane is in cache: a batch norm's statistics. */
                        if (ep && ep->stats)
                            nn_plane_stats(out + o, phw,
                                           ep->stats + ((size_t)(a + i) * s->oc + oc) * 3);
                    } else if (pk == 2 && ps == 2) {
                        if (relu) pool2_plane(out + o, arg + o, src, bias, 1, s->ow, q.tlay, ph, pw);
                        else pool2_plane(out + o, arg + o, src, bias, 0, s->ow, q.tlay, ph, pw);
                    } else {
                        pool_plane(out + o, arg + o, src, bias, relu, s->ow, q.tlay, pk, ps, ph,
                                   pw);
                    }
                }
            }
        }
    }
}

void nn_conv2d_forward(float *out, const float *in, const float *w, const float *b,
                       const nn_conv_shape *s, float *ws)
{
    nn_conv2d_forward_ex(out, NULL, in, w, b, s, NULL, ws);
}

/* ------------------------------------------------------------ backward */

/* The gradient of one sample's conv output, t (OH rows of stride tl, the
 * junk columns OW..tl zeroed), from the epilogue's output gradient g and
 * output o (both (PH, PW), or (OH, OW) without pool): pooled gradients go
 * back to their argmax, the ReLU passes where o > 0. */
static void unpool_plane(float *restrict t, const float *restrict g, const float *restrict o,
                         const int32_t *restrict a, int relu, int oh, int ow, plane_lay L,
                         int k, int st, int ph, int pw)
{
    const int tl = L.tl;
    if (k == 2 && st == 2) {
        /* Windows tile the plane: write every covered position once. */
        for (int py = 0; py < ph; py++) {
            float *r0 = t + (size_t)py * L.rp, *r1 = r0 + L.ro;
            const int32_t base = 2 * py * ow;
            const float *gp = g + (size_t)py * pw, *opl = o + (size_t)py * pw;
            const int32_t *ap = a + (size_t)py * pw;
#pragma omp simd
            for (int px = 0; px < pw; px++) {
                const float gv = (!relu || opl[px] > 0.0f) ? gp[px] : 0.0f;
                const int32_t p0 = base + 2 * px, p = ap[px];
                r0[2 * px] = p == p0 ? gv : 0.0f;
                r0[2 * px + 1] = p == p0 + 1 ? gv : 0.0f;
                r1[2 * px] = p == p0 + ow ? gv : 0.0f;
                r1[2 * px + 1] = p == p0 + ow + 1 ? gv : 0.0f;
            }
            for (int x = 2 * pw; x < tl; x++) r0[x] = r1[x] = 0.0f;
        }
        for (int y = 2 * ph; y < oh; y++)
            for (int x = 0; x < tl; x++) t[prow(&L, y) + x] = 0.0f;
        return;
    }
    /* Overlapping or partial windows: add in order, as nn_maxpool_backward. */
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < tl; x++) t[prow(&L, y) + x] = 0.0f;
    for (int j = 0; j < ph * pw; j++)
        if (!relu || o[j] > 0.0f) t[prow(&L, a[j] / ow) + a[j] % ow] += g[j];
}

/* t (OH rows of stride tl, junk zeroed) = g (OH, OW), masked by o > 0
 * when relu. */
static void mask_plane(float *restrict t, const float *restrict g, const float *restrict o,
                       int relu, int oh, int ow, plane_lay L)
{
    const int tl = L.tl;
    for (int y = 0; y < oh; y++) {
        float *ty = t + prow(&L, y);
        const float *gy = g + (size_t)y * ow;
        if (relu) {
            const float *oy = o + (size_t)y * ow;
#pragma omp simd
            for (int x = 0; x < ow; x++) ty[x] = oy[x] > 0.0f ? gy[x] : 0.0f;
        } else {
#pragma omp simd
            for (int x = 0; x < ow; x++) ty[x] = gy[x];
        }
        for (int x = ow; x < tl; x++) ty[x] = 0.0f;
    }
}

/* What every chunk of one backward call shares. */
typedef struct {
    const nn_conv_shape *s;
    const conv_geom *q;
    const float *dout, *out, *in, *w, *wk;
    const int32_t *arg;
    int relu, pk, ps, ph, pw;   /* the epilogue: ReLU, pool k and stride, pooled size */
    int direct;                 /* dout already has t's layout: used as is */
    size_t in_plane, out_plane; /* floats per sample of in and of dout */
    const nn_bn_grad *bn;       /* dout made from a batch norm's backward, or NULL */
    const nn_affine *af;        /* in normalised as it is copied, or NULL */
} conv_bwd;

/* t (OH rows laid out as L, junk zeroed) = the input gradient of the batch
 * norm after this conv, for one plane (sample i, channel oc): its last
 * pass (nn_bn_dx) done here, while the plane is built, instead of over
 * the whole tensor. */
static void bn_plane(float *restrict t, const nn_bn_grad *b, int i, int oc, int nc, int oh,
                     int ow, plane_lay L)
{
    int k = 0;
    while (k + 1 < b->g->n && i >= b->g->start[k + 1]) k++;
    const size_t gk = (size_t)k * nc + oc, o = ((size_t)i * nc + oc) * oh * ow;
    const float ga = b->gamma ? b->gamma[oc] : 1.0f, be = b->beta ? b->beta[oc] : 0.0f;
    const float mf = b->mean[gk], isf = b->istd[gk], scale = ga * isf;
    const float mdy = b->sums[2 * gk], mdyx = b->sums[2 * gk + 1];
    for (int y = 0; y < oh; y++) {
        float *ty = t + prow(&L, y);
        const float *dy = b->dy + o + (size_t)y * ow, *p = b->x + o + (size_t)y * ow;
        if (b->relu) {
#pragma omp simd
            for (int x = 0; x < ow; x++)
                ty[x] = nn_bn_dx(dy[x], p[x], ga, be, mf, isf, scale, mdy, mdyx, 1, b->eval);
        } else {
#pragma omp simd
            for (int x = 0; x < ow; x++)
                ty[x] = nn_bn_dx(dy[x], p[x], ga, be, mf, isf, scale, mdy, mdyx, 0, b->eval);
        }
        for (int x = ow; x < L.tl; x++) ty[x] = 0.0f;
    }
}

/* tc (OC, cc): the gradient of the conv output of samples [a, a + m), in
 * t's layout; dout itself when it already has it. */
static const float *chunk_grad(const conv_bwd *c, const conv_slot *sl, int a, int m)
{
    const nn_conv_shape *s = c->s;
    if (c->direct) return c->dout + (size_t)a * c->out_plane;
    const int cc = m * c->q->cps, phw = c->ph * c->pw;
    for (int i = 0; i < m; i++)
        for (int oc = 0; oc < s->oc; oc++) {
            const size_t o = (size_t)(a + i) * c->out_plane + (size_t)oc * phw;
            float *tp = sl->t + (size_t)oc * cc + (size_t)i * c->q->cps;
            const float *op = c->out ? c->out + o : NULL;
            if (c->bn)
                bn_plane(tp, c->bn, a + i, oc, s->oc, s->oh, s->ow, c->q->tlay);
            else if (c->pk > 0)
                unpool_plane(tp, c->dout + o, op, c->arg + o, c->relu, s->oh, s->ow, c->q->tlay,
                             c->pk, c->ps, c->ph, c->pw);
            else
                mask_plane(tp, c->dout + o, op, c->relu, s->oh, s->ow, c->q->tlay);
            /* Winograd's last tile row may pass the plane: zeros there. */
            for (int y = s->oh; y < c->q->cps / c->q->tl; y++)
                for (int x = 0; x < c->q->tl; x++) tp[prow(&c->q->tlay, y) + x] = 0.0f;
        }
    return sl->t;
}

/* dwᵀ (CKK, OC) += the weight gradient of samples [a, a + m) from tc. The
 * junk columns of tc are 0: they add nothing. */
static void chunk_dw(const conv_bwd *c, const conv_slot *sl, const float *tc, int a, int m,
                     float *dwt)
{
    const nn_conv_shape *s = c->s;
    const conv_geom *q = c->q;
    const int cc = m * q->cps, kk = s->kh * s->kw;
    const float *x = c->in + (size_t)a * c->in_plane;
    if (q->padded) fill_p(sl->p, x, s, q, m, c->af, a);
    if (q->shift_dw) {
        /* Rows c·KK + k of dwᵀ (stride KK·OC) += P_i at shift k · t_iᵀ. */
        for (int i = 0; i < m; i++)
            for (int k = 0; k < kk; k++)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s->c, s->oc, q->cps, 1.0f,
                            sl->p + (size_t)i * q->pps + tap_off(s, q, k),
                            (int)q->pplane, tc + (size_t)i * q->cps, cc, 1.0f,
                            dwt + (size_t)k * s->oc, kk * s->oc);
        return;
    }
    if (q->padded && s->c < 8 && kk <= KK_MAX) {
        /* Few channels (a first layer): dwᵀ is a long, thin product (K =
         * the whole plane, N = C·KH·KW ≤ 7·49), which OpenBLAS runs at a
         * tenth of its speed; the direct kernel sums it in registers
         * straight from P. */
        size_t toff[KK_MAX];
        for (int k = 0; k < kk; k++) toff[k] = tap_off(s, q, k);
        for (int i = 0; i < m; i++)
            conv_direct_dw(dwt, s->oc, q->cps, sl->p + (size_t)i * q->pps, q->pplane, s->c, toff,
                           kk, tc + (size_t)i * q->cps, (size_t)cc);
        return;
    }
    /* dwᵀ += col·tᵀ: OpenBLAS runs this shape ~15% faster than t·colᵀ when
     * OC is small. */
    if (q->padded) im2col_padded(sl->col, sl->p, s, q, m);
    else im2col_rows(sl->col, x, s, m);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, q->ckk, s->oc, cc, 1.0f, sl->col, cc,
                tc, cc, 1.0f, dwt, s->oc);
}

/* din of samples [a, a + m) (+= when add, else =) from tc. Runs after
 * chunk_dw: it reuses P and col. */
static void chunk_din(const conv_bwd *c, const conv_slot *sl, const float *tc, int a, int m,
                      float *din, int add)
{
    const nn_conv_shape *s = c->s;
    const conv_geom *q = c->q;
    const int cc = m * q->cps, kk = s->kh * s->kw;
    float *dst = din + (size_t)a * c->in_plane;
    if (q->shift) {
        /* dP_i[j] (C padded planes, over P_i) = Σ_k wk[k]ᵀ · t_i[j − shift
         * of k]: the direct kernel over T' (t_i with dfront zeros before
         * each row), shifts dfront − shift; one call per phase plane (its
         * kernel positions) for stride 2. */
        float *tp = sl->col;
        for (int i = 0; i < m; i++) {
            for (int o = 0; o < s->oc; o++) {
                float *r = tp + (size_t)o * q->dlen;
                const float *src = tc + (size_t)o * cc + (size_t)i * q->cps;
                for (size_t j = 0; j < q->dfront; j++) r[j] = 0.0f;
                memcpy(r + q->dfront, src, sizeof(float) * (size_t)q->cps);
                for (size_t j = q->dfront + (size_t)q->cps; j < q->dlen; j++) r[j] = 0.0f;
            }
            float *dP = sl->p + (size_t)i * q->pps;
            const float *wp = c->wk;   /* each phase's pack after the last (pack_weights) */
            for (int ph = 0; ph < (q->poly ? 4 : 1); ph++) {
                size_t toff[KK_MAX];
                int n = 0;
                for (int k = 0; k < kk; k++)
                    if (tap_phase(s, q, k) == ph) toff[n++] = q->dfront - tap_in(s, q, k);
                direct_rows(s, q, sl, dP + (size_t)ph * s->c * q->pplane + q->d0, q->pplane, s->c,
                            q->drows, q->dcols, (size_t)q->wp, tp + q->d0, q->dlen, s->oc, toff,
                            wp, n);
                wp += (size_t)s->oc * s->c * n;
            }
            if (q->poly) phases_put(dst + (size_t)i * c->in_plane, add, dP, s, q);
            else interior_put(dst + (size_t)i * c->in_plane, add, dP, s, q);
        }
        return;
    }
    /* dcol (CKK, cc) = wᵀ·t, into col: dw is done with it. */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, q->ckk, cc, s->oc, 1.0f, c->w, q->ckk,
                tc, cc, 0.0f, sl->col, cc);
    if (q->padded) col2im_padded(dst, add, sl->col, sl->p, s, q, m);
    else col2im_rows(dst, add, sl->col, s, m);
}

/* Winograd: dU (16, OC, C) += the weight gradient of samples [a, a + m)
 * in the transformed domain (when du), din (+= when add, else =) from tc
 * (when din). dM = A tc Aᵀ is made once for both. */
static void chunk_wino(const conv_bwd *c, const conv_slot *sl, const float *tc, int a, int m,
                       float *du, float *din, int add)
{
    const nn_conv_shape *s = c->s;
    const conv_geom *q = c->q;
    const int tiles = q->th * q->tx, nt = m * tiles, cc = m * q->cps;
    for (int i = 0; i < m; i++)
        wino_output_adjoint(sl->m, q->mpos, tc + (size_t)i * q->cps, (size_t)cc, q->tlay.ro,
                            s->oc, nt, i * tiles, tiles);
    if (du) {
        fill_p(sl->p, c->in + (size_t)a * c->in_plane, s, q, m, c->af, a);
        for (int i = 0; i < m; i++)
            wino_input(sl->col, q->vpos, s->c, nt, i * tiles,
                       sl->p + (size_t)i * s->c * q->pplane, q->pplane, q->wp, q->play.ro, tiles);
        for (int k = 0; k < 16; k++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s->oc, s->c, nt, 1.0f,
                        sl->m + (size_t)k * q->mpos, nt, sl->col + (size_t)k * q->vpos, nt, 1.0f,
                        du + (size_t)k * s->oc * s->c, s->c);
    }
    if (din) {
        /* dV_k = U_kᵀ · dM_k into V (dU is done with it), then B dV Bᵀ. */
        for (int k = 0; k < 16; k++)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, s->c, nt, s->oc, 1.0f,
                        c->wk + (size_t)k * s->oc * s->c, s->c, sl->m + (size_t)k * q->mpos, nt,
                        0.0f, sl->col + (size_t)k * q->vpos, nt);
        for (int i = 0; i < m; i++) {
            float *dP = sl->p + (size_t)i * s->c * q->pplane;
            memset(dP, 0, sizeof(float) * (size_t)s->c * q->pplane);
            wino_input_adjoint(dP, q->pplane, q->wp, q->play.ro, sl->col, q->vpos, s->c, nt,
                               i * tiles, tiles);
            interior_put(din + (size_t)(a + i) * c->in_plane, add, dP, s, q);
        }
    }
}

/* dw (OC, CKK) += the sum of nblk partials dwᵀ (CKK, OC) `stride` floats
 * apart, rows [i0, i0 + SUM_ROWS) of dwᵀ: each value summed from 0 over
 * the blocks in order, then added (the same chain whatever the tiling).
 * Tiles of rows × SUM_COLS columns read the partials along their rows
 * and write dw along its own: summed one value at a time down a column,
 * a 512-channel layer's partials (9 MB each) came from memory a float a
 * cache line (resnet18's layer4 conv backward: 300 → 222 ms, one thread). */
#define SUM_ROWS 16
#define SUM_COLS 64
static void add_partials(float *d, const float *p0, size_t stride, int nblk, int oc, int ckk,
                         int i0)
{
    const int ni = ckk - i0 < SUM_ROWS ? ckk - i0 : SUM_ROWS;
    for (int o0 = 0; o0 < oc; o0 += SUM_COLS) {
        const int no = oc - o0 < SUM_COLS ? oc - o0 : SUM_COLS;
        float acc[SUM_ROWS][SUM_COLS];
        for (int i = 0; i < ni; i++)
            for (int o = 0; o < no; o++) acc[i][o] = 0.0f;
        for (int bk = 0; bk < nblk; bk++)
            for (int i = 0; i < ni; i++) {
                const float *r = p0 + (size_t)bk * stride + (size_t)(i0 + i) * oc + o0;
#pragma omp simd
                for (int o = 0; o < no; o++) acc[i][o] += r[o];
            }
        for (int o = 0; o < no; o++)
            for (int i = 0; i < ni; i++) d[(size_t)(o0 + o) * ckk + i0 + i] += acc[i][o];
    }
}

/* dout: gradient of the epilogue's output; out, arg: that output and the
 * pool's argmax (used when the epilogue has a ReLU or a pool). din
 * (N, C, H, W) or NULL: += when din_add, else overwritten; dw[k]
 * (OC, C, KH, KW) and db[k] (OC) per group (+=), NULL skips. */
void nn_conv2d_backward_ex(float *din, int din_add, float *const dw[], float *const db[],
                           const float *dout, const float *out, const int32_t *arg,
                           const float *in, const float *w, const nn_conv_shape *s,
                           const nn_epilogue *ep, const lethe_groups *g, float *ws)
{
    if (s->n <= 0 || s->oh <= 0 || s->ow <= 0 || s->oc <= 0) return;
    const conv_geom q = geom(s);
    conv_bwd c = {.s = s, .q = &q, .dout = dout, .out = out, .in = in, .w = w, .wk = ws,
                  .arg = arg, .relu = ep && ep->relu, .bn = ep ? ep->bn : NULL,
                  .af = ep ? ep->in_affine : NULL};
    const int pk = ep ? ep->pool_k : 0, ps = ep ? ep->pool_s : 0;
    if (pk > 0 && ps > 0 && s->oh >= pk && s->ow >= pk) {
        c.pk = pk;
        c.ps = ps;
        c.ph = pooled(s->oh, pk, ps);
        c.pw = pooled(s->ow, pk, ps);
    } else {
        c.ph = s->oh;
        c.pw = s->ow;
    }
    c.in_plane = (size_t)s->c * s->h * s->w;
    c.out_plane = (size_t)s->oc * c.ph * c.pw;
    if (q.shift && din) pack_weights(ws, w, s, &q, 1);
    if (q.wino && din) wino_weights(ws, w, s->oc, s->c);

    for (int k = 0; k < g->n;) {
        float *d = dw ? dw[k] : NULL, *e = db ? db[k] : NULL;
        const int r0 = g->start[k];
        int r1 = g->start[k + 1];
        for (k++; k < g->n && (dw ? dw[k] : NULL) == d && (db ? db[k] : NULL) == e; k++)
            r1 = g->start[k + 1];
        if ((!d && !e && !din) || r1 <= r0) continue;
        conv_plan p = plan(s, &q, r1 - r0);
        if (core_dist_plan_active()) {
            /* --deterministic: one sample a chunk, as forward, so that the
             * blocks (below) do not depend on the number of threads. */
            p.nb = 1;
            p.chunks = r1 - r0;
        }
        /* dout's layout is t's: one sample a chunk, no pool, no ReLU, no junk. */
        c.direct = !c.pk && !c.relu && !c.bn && !q.padded && p.nb == 1;
        /* Fixed blocks of chunks, each summing into its own partial, taken
         * by whichever thread is free and added up in block order: the
         * result does not depend on which thread ran what (deterministic),
         * and a thread slowed by another process takes fewer blocks. */
        const int nblk = p.chunks < CONV_BLOCKS ? p.chunks : CONV_BLOCKS;
#pragma omp parallel num_threads(p.threads)
        {
            const conv_slot sl = slot_at(s, &q, ws, nn_thread_id());
#pragma omp for schedule(dynamic, 1)
            for (int bk = 0; bk < nblk; bk++) {
                float *dwt = part_dwt(s, &q, ws, bk);
                double *dbp = part_db(s, &q, ws, bk);
                if (d)
                    memset(dwt, 0, sizeof(float) * (size_t)s->oc * (q.wino ? 16 * s->c : q.ckk));
                if (e)
                    for (int oc = 0; oc < s->oc; oc++) dbp[oc] = 0.0;
                const int c0 = (int)((long)p.chunks * bk / nblk);
                const int c1 = (int)((long)p.chunks * (bk + 1) / nblk);
                for (int ch = c0; ch < c1; ch++) {
                    const int a = r0 + ch * p.nb, m = r1 - a < p.nb ? r1 - a : p.nb;
                    const int cc = m * q.cps;
                    const float *tc = chunk_grad(&c, &sl, a, m);
                    if (e) {
                        for (int oc = 0; oc < s->oc; oc++) {
                            const float *r = tc + (size_t)oc * cc;
                            double sum = 0.0;
#pragma omp simd reduction(+ : sum)
                            for (int j = 0; j < cc; j++) sum += r[j];
                            dbp[oc] += sum;
                        }
                    }
                    if (q.wino) {
                        chunk_wino(&c, &sl, tc, a, m, d ? dwt : NULL, din, din_add);
                        continue;
                    }
                    if (d) chunk_dw(&c, &sl, tc, a, m, dwt);
                    if (din) chunk_din(&c, &sl, tc, a, m, din, din_add);
                }
            }
            /* The implicit barrier above made every partial complete. */
            if (d && q.wino) {
                /* dw += Gᵀ (Σ blocks dU) G. */
#pragma omp for schedule(static)
                for (int o = 0; o < s->oc; o++)
                    wino_weights_adjoint(d, part_dwt(s, &q, ws, 0), part_floats(s, &q), nblk,
                                         s->oc, s->c, o, o + 1);
            } else if (d) {
#pragma omp for schedule(static)
                for (int i0 = 0; i0 < q.ckk; i0 += SUM_ROWS)
                    add_partials(d, part_dwt(s, &q, ws, 0), part_floats(s, &q), nblk, s->oc,
                                 q.ckk, i0);
            }
            if (e) {
#pragma omp for schedule(static)
                for (int o = 0; o < s->oc; o++) {
                    double sum = 0.0;
                    for (int bk = 0; bk < nblk; bk++) sum += part_db(s, &q, ws, bk)[o];
                    e[o] += (float)sum;
                }
            }
        }
    }
}

void nn_conv2d_backward(float *din, float *const dw[], float *const db[],
                        const float *dout, const float *in, const float *w,
                        const nn_conv_shape *s, const lethe_groups *g, float *ws)
{
    nn_conv2d_backward_ex(din, 1, dw, db, dout, NULL, NULL, in, w, s, NULL, g, ws);
}
