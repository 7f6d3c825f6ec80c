using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LoRA.Managed.Kernels;

/// <summary>
/// One row of <see cref="LayerNormKernel"/> in 512-bit vectors: the formulas are that class's, computed in a few
/// passes over a row held in L1, the ragged end through AVX-512 masked loads and stores.
/// </summary>
/// <remarks>
/// A transformer's rows are short (64 columns in lm-demo), so the former loop of six
/// <see cref="System.Numerics.Tensors.TensorPrimitives"/> calls per row spent most of its time in the calls: about
/// 0.7 ns per element forward and more backward. Each sum runs in four vector accumulators reduced in a fixed order,
/// so a row's result depends only on the row. Used when <see cref="RowMask.IsSupported"/>; the kernel keeps its
/// portable loop otherwise.
/// </remarks>
internal static unsafe class LayerNormRow
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Sum(Vector512<float> a0, Vector512<float> a1, Vector512<float> a2, Vector512<float> a3) =>
        Vector512.Sum((a0 + a1) + (a2 + a3));

    /// <summary>y = (x − μ)·rstd·w + b for one row of <paramref name="cols"/>; writes μ and rstd.</summary>
    public static void Forward(float* x, float* w, float* b, float* y, int cols, float eps, out float mean,
        out float rstd)
    {
        Vector512<float> z = Vector512<float>.Zero, a0 = z, a1 = z, a2 = z, a3 = z;
        int k = 0;
        for (; k <= cols - 64; k += 64)
        {
            a0 += Vector512.Load(x + k); a1 += Vector512.Load(x + k + 16);
            a2 += Vector512.Load(x + k + 32); a3 += Vector512.Load(x + k + 48);
        }
        for (; k < cols; k += 16) a0 += Avx512F.MaskLoad(x + k, RowMask.Mask(k, cols), z);
        float m = Sum(a0, a1, a2, a3) / cols;
        // Two passes (mean, then squared deviations) rather than E[x²] − μ², which cancels badly when |μ| ≫ σ.
        Vector512<float> vm = Vector512.Create(m);
        a0 = a1 = a2 = a3 = z;
        for (k = 0; k <= cols - 64; k += 64)
        {
            Vector512<float> d0 = Vector512.Load(x + k) - vm, d1 = Vector512.Load(x + k + 16) - vm;
            Vector512<float> d2 = Vector512.Load(x + k + 32) - vm, d3 = Vector512.Load(x + k + 48) - vm;
            a0 = Vector512.FusedMultiplyAdd(d0, d0, a0); a1 = Vector512.FusedMultiplyAdd(d1, d1, a1);
            a2 = Vector512.FusedMultiplyAdd(d2, d2, a2); a3 = Vector512.FusedMultiplyAdd(d3, d3, a3);
        }
        for (; k < cols; k += 16)
        {
            Vector512<float> mask = RowMask.Mask(k, cols);
            Vector512<float> d = Vector512.ConditionalSelect(mask, Avx512F.MaskLoad(x + k, mask, z) - vm, z);
            a0 = Vector512.FusedMultiplyAdd(d, d, a0);
        }
        float s = 1f / MathF.Sqrt(Sum(a0, a1, a2, a3) / cols + eps);
        Vector512<float> vs = Vector512.Create(s);
        for (k = 0; k <= cols - 16; k += 16)
            Vector512.FusedMultiplyAdd((Vector512.Load(x + k) - vm) * vs, Vector512.Load(w + k), Vector512.Load(b + k))
                .Store(y + k);
        if (k < cols)
        {
            Vector512<float> mask = RowMask.Mask(k, cols);
            Avx512F.MaskStore(y + k, mask, Vector512.FusedMultiplyAdd((Avx512F.MaskLoad(x + k, mask, z) - vm) * vs,
                Avx512F.MaskLoad(w + k, mask, z), Avx512F.MaskLoad(b + k, mask, z)));
        }
        mean = m;
        rstd = s;
    }

    /// <summary>
    /// <c>dw += Σ_rows dy⊙x̂</c> and <c>db += Σ_rows dy</c> (each skipped when null) for columns [c0, c1), c0 a
    /// multiple of 16, rows in order: the same operations on each column as <see cref="Backward"/> row after row.
    /// </summary>
    public static void ParameterGradients(float* x, float* mean, float* rstd, float* dy, float* dw, float* db,
        int rows, int cols, int c0, int c1)
    {
        Vector512<float> z = Vector512<float>.Zero;
        for (int k = c0; k < c1; k += 16)
        {
            Vector512<float> mask = RowMask.Mask(k, c1);
            Vector512<float> sw = dw == null ? z : Avx512F.MaskLoad(dw + k, mask, z);
            Vector512<float> sb = db == null ? z : Avx512F.MaskLoad(db + k, mask, z);
            for (long r = 0; r < rows; r++)
            {
                Vector512<float> dyr = Avx512F.MaskLoad(dy + r * cols + k, mask, z);
                Vector512<float> xh = (Avx512F.MaskLoad(x + r * cols + k, mask, z) - Vector512.Create(mean[r]))
                    * Vector512.Create(rstd[r]);
                sb += dyr;
                sw = Vector512.FusedMultiplyAdd(dyr, xh, sw);
            }
            if (dw != null) Avx512F.MaskStore(dw + k, mask, sw);
            if (db != null) Avx512F.MaskStore(db + k, mask, sb);
        }
    }

    /// <summary>
    /// One row's share of the backward: <c>dw += dy⊙x̂</c> and <c>db += dy</c> (each skipped when null), and, when
    /// <paramref name="dx"/> is not null, <c>dx += rstd·(g − mean(g) − x̂·mean(g⊙x̂))</c> with <c>g = dy⊙w</c>
    /// (written instead of added with <paramref name="overwrite"/>).
    /// </summary>
    public static void Backward(float* x, float* w, float mean, float rstd, float* dy, float* dx, float* dw,
        float* db, int cols, bool overwrite)
    {
        Vector512<float> z = Vector512<float>.Zero, vm = Vector512.Create(mean), vr = Vector512.Create(rstd);
        Vector512<float> g0 = z, g1 = z, gx0 = z, gx1 = z;
        int k = 0;
        for (; k < cols; k += 32)
        {
            // Two vectors a step (the second possibly empty): two accumulators per sum.
            Vector512<float> ma = RowMask.Mask(k, cols), mb = RowMask.Mask(k + 16, cols);
            Vector512<float> dya = Avx512F.MaskLoad(dy + k, ma, z), dyb = Avx512F.MaskLoad(dy + k + 16, mb, z);
            Vector512<float> xha = (Avx512F.MaskLoad(x + k, ma, z) - vm) * vr;
            Vector512<float> xhb = (Avx512F.MaskLoad(x + k + 16, mb, z) - vm) * vr;
            if (db != null)
            {
                Avx512F.MaskStore(db + k, ma, Avx512F.MaskLoad(db + k, ma, z) + dya);
                Avx512F.MaskStore(db + k + 16, mb, Avx512F.MaskLoad(db + k + 16, mb, z) + dyb);
            }
            if (dw != null)
            {
                Avx512F.MaskStore(dw + k, ma, Vector512.FusedMultiplyAdd(dya, xha, Avx512F.MaskLoad(dw + k, ma, z)));
                Avx512F.MaskStore(dw + k + 16, mb,
                    Vector512.FusedMultiplyAdd(dyb, xhb, Avx512F.MaskLoad(dw + k + 16, mb, z)));
            }
            if (dx == null) continue;
            Vector512<float> ga = dya * Avx512F.MaskLoad(w + k, ma, z), gb = dyb * Avx512F.MaskLoad(w + k + 16, mb, z);
            g0 += ga; g1 += gb;
            gx0 = Vector512.FusedMultiplyAdd(ga, xha, gx0); gx1 = Vector512.FusedMultiplyAdd(gb, xhb, gx1);
        }
        if (dx == null) return;
        Vector512<float> meanG = Vector512.Create(Vector512.Sum(g0 + g1) / cols);
        Vector512<float> meanGx = Vector512.Create(-(Vector512.Sum(gx0 + gx1) / cols));
        for (k = 0; k < cols; k += 16)
        {
            Vector512<float> mask = RowMask.Mask(k, cols);
            Vector512<float> xh = (Avx512F.MaskLoad(x + k, mask, z) - vm) * vr;
            Vector512<float> g = Avx512F.MaskLoad(dy + k, mask, z) * Avx512F.MaskLoad(w + k, mask, z) - meanG;
            g = Vector512.FusedMultiplyAdd(xh, meanGx, g);
            // Written: g·rstd, the same bits as g·rstd + 0.
            Avx512F.MaskStore(dx + k, mask,
                overwrite ? g * vr : Vector512.FusedMultiplyAdd(g, vr, Avx512F.MaskLoad(dx + k, mask, z)));
        }
    }
}
