using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LoRA.Managed.Kernels;

/// <summary>
/// One row of the scaled softmax, <c>pⱼ = exp(s·(xⱼ − m)) / Σₖ exp(s·(xₖ − m))</c> with <c>m = maxₖ xₖ</c>, and its
/// Jacobian-vector product: the row loops of <see cref="CausalSoftmaxKernel"/> and
/// <see cref="CachedAttentionKernel"/>. Both call the same code, so the training path's softmax and KV-cache
/// decoding's give the same bits for the same scores.
/// </summary>
/// <remarks>
/// Attention's rows are short (row i of a causal T×T matrix has i + 1 entries), so the cost was the calls, not the
/// arithmetic: five <see cref="System.Numerics.Tensors.TensorPrimitives"/> calls per row took about 1 ns per element.
/// Here a row is three passes of 512-bit vectors over data in L1 (max; exp and sum; scale), the ragged end read and
/// written with AVX-512 masked loads and stores (masked-off lanes are neither read nor written, so nothing past the
/// row is touched). Without AVX-512 the same formula runs a scalar loop.
/// </remarks>
internal static unsafe class SoftmaxRow
{
    /// <summary>Writes the softmax of x[0..n) scaled by <paramref name="scale"/> into y[0..n) (may alias x).</summary>
    public static void Forward(float* x, float* y, int n, float scale) => Forward(x, y, n, n, scale);

    /// <summary>
    /// The softmax of x[0..n) into y[0..n) and zeros into y[n..width) (a causal row's masked part). The values do not
    /// depend on <paramref name="width"/>.
    /// </summary>
    public static void Forward(float* x, float* y, int n, int width, float scale)
    {
        if (n <= 0)
        {
            Clear(y, width);
            return;
        }
        if (!RowMask.IsSupported)
        {
            ForwardScalar(x, y, n, scale);
            Clear(y + n, width - n);
        }
        else if (n <= Small)
        {
            // By the row's length alone, so a row has the same bits whatever its width (cached attention's rows have
            // none to clear).
            ForwardSmall(x, y, n, Math.Min(width, Small), scale);
            Clear(y + Small, width - Small);
        }
        else
        {
            ForwardLong(x, y, n, scale);
            Clear(y + n, width - n);
        }
    }

    // Rows of up to 64 (attention's usual context in a small model, and every row of its first 64 positions) stay in
    // four registers: masked loads (lanes at or past n read nothing), no branch on the length, and the four vectors'
    // exponentials are independent work. A row is otherwise a chain of dependent reductions, and its latency, not its
    // arithmetic, is what it costs.
    private const int Small = 64;


    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Load4(float* x, int n, out Vector512<float> x0, out Vector512<float> x1,
        out Vector512<float> x2, out Vector512<float> x3)
    {
        Vector512<float> ninf = Vector512.Create(float.NegativeInfinity);
        x0 = Avx512F.MaskLoad(x, RowMask.Mask(0, n), ninf);
        x1 = Avx512F.MaskLoad(x + 16, RowMask.Mask(16, n), ninf);
        x2 = Avx512F.MaskLoad(x + 32, RowMask.Mask(32, n), ninf);
        x3 = Avx512F.MaskLoad(x + 48, RowMask.Mask(48, n), ninf);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Max4(Vector512<float> x0, Vector512<float> x1, Vector512<float> x2,
        Vector512<float> x3) =>
        AllMax(Vector512.MaxNative(Vector512.MaxNative(x0, x1), Vector512.MaxNative(x2, x3)));

    // exp(s·(x − m)) in lanes below n, 0 above.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> E(Vector512<float> x, Vector512<float> vm, Vector512<float> vs, int lane0, int n) =>
        Vector512.ConditionalSelect(RowMask.Mask(lane0, n), FastExp.Exp((x - vm) * vs), Vector512<float>.Zero);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store4(float* y, int width, Vector512<float> inv, Vector512<float> e0, Vector512<float> e1,
        Vector512<float> e2, Vector512<float> e3)
    {
        Avx512F.MaskStore(y, RowMask.Mask(0, width), e0 * inv);
        Avx512F.MaskStore(y + 16, RowMask.Mask(16, width), e1 * inv);
        Avx512F.MaskStore(y + 32, RowMask.Mask(32, width), e2 * inv);
        Avx512F.MaskStore(y + 48, RowMask.Mask(48, width), e3 * inv);
    }

    private static void ForwardSmall(float* x, float* y, int n, int width, float scale)
    {
        Load4(x, n, out Vector512<float> x0, out Vector512<float> x1, out Vector512<float> x2, out Vector512<float> x3);
        Vector512<float> vm = Max4(x0, x1, x2, x3), vs = Vector512.Create(scale);
        Vector512<float> e0 = E(x0, vm, vs, 0, n), e1 = E(x1, vm, vs, 16, n);
        Vector512<float> e2 = E(x2, vm, vs, 32, n), e3 = E(x3, vm, vs, 48, n);
        Store4(y, width, Vector512<float>.One / AllSum((e0 + e1) + (e2 + e3)), e0, e1, e2, e3);
    }

    /// <summary>
    /// Two rows (a and b, each as <see cref="Forward(float*, float*, int, int, float)"/> computes it alone, bit for
    /// bit), their operations interleaved: a short row is one chain of dependent reductions (max, exponentials, sum,
    /// division), and two independent chains side by side keep the core busy while each waits.
    /// </summary>
    public static void ForwardPair(float* xa, float* ya, int na, float* xb, float* yb, int nb, int width, float scale)
    {
        if (!RowMask.IsSupported || na <= 0 || nb <= 0 || na > Small || nb > Small)
        {
            Forward(xa, ya, na, width, scale);
            Forward(xb, yb, nb, width, scale);
            return;
        }
        // Only the vectors that hold entries are computed: a causal row of length i + 1 needs ⌈(i + 1)/16⌉ of the
        // four. The vectors left out hold −∞ and exp 0 in the full computation, and max(m, −∞) = m and s + 0 = s
        // exactly, so the bits are the same.
        switch ((Math.Max(na, nb) + 15) >> 4)
        {
            case 1: ForwardPair<One>(xa, ya, na, xb, yb, nb, width, scale); break;
            case 2: ForwardPair<Two>(xa, ya, na, xb, yb, nb, width, scale); break;
            case 3: ForwardPair<Three>(xa, ya, na, xb, yb, nb, width, scale); break;
            default: ForwardPair<Four>(xa, ya, na, xb, yb, nb, width, scale); break;
        }
        // Stored so far: the computed vectors, up to the width (zeros past each row's length).
        int done = Math.Min(width, (Math.Max(na, nb) + 15) & ~15);
        Clear(ya + done, width - done);
        Clear(yb + done, width - done);
    }

    private interface IVectorCount
    {
        static abstract int Count { get; }
    }

    private struct One : IVectorCount { public static int Count => 1; }

    private struct Two : IVectorCount { public static int Count => 2; }

    private struct Three : IVectorCount { public static int Count => 3; }

    private struct Four : IVectorCount { public static int Count => 4; }

    // Rows a and b of at most 16·C entries; writes the first min(16·C, width) lanes of each (zeros past its length).
    // C is a constant in each instantiation, so the unused vectors' code disappears.
    private static void ForwardPair<TC>(float* xa, float* ya, int na, float* xb, float* yb, int nb, int width,
        float scale)
        where TC : struct, IVectorCount
    {
        int c = TC.Count;
        Vector512<float> ninf = Vector512.Create(float.NegativeInfinity), z = Vector512<float>.Zero;
        Vector512<float> a0 = Avx512F.MaskLoad(xa, RowMask.Mask(0, na), ninf);
        Vector512<float> b0 = Avx512F.MaskLoad(xb, RowMask.Mask(0, nb), ninf);
        Vector512<float> a1 = c > 1 ? Avx512F.MaskLoad(xa + 16, RowMask.Mask(16, na), ninf) : ninf;
        Vector512<float> b1 = c > 1 ? Avx512F.MaskLoad(xb + 16, RowMask.Mask(16, nb), ninf) : ninf;
        Vector512<float> a2 = c > 2 ? Avx512F.MaskLoad(xa + 32, RowMask.Mask(32, na), ninf) : ninf;
        Vector512<float> b2 = c > 2 ? Avx512F.MaskLoad(xb + 32, RowMask.Mask(32, nb), ninf) : ninf;
        Vector512<float> a3 = c > 3 ? Avx512F.MaskLoad(xa + 48, RowMask.Mask(48, na), ninf) : ninf;
        Vector512<float> b3 = c > 3 ? Avx512F.MaskLoad(xb + 48, RowMask.Mask(48, nb), ninf) : ninf;
        Vector512<float> ma = Max4(a0, a1, a2, a3), mb = Max4(b0, b1, b2, b3), vs = Vector512.Create(scale);
        a0 = E(a0, ma, vs, 0, na); b0 = E(b0, mb, vs, 0, nb);
        a1 = c > 1 ? E(a1, ma, vs, 16, na) : z; b1 = c > 1 ? E(b1, mb, vs, 16, nb) : z;
        a2 = c > 2 ? E(a2, ma, vs, 32, na) : z; b2 = c > 2 ? E(b2, mb, vs, 32, nb) : z;
        a3 = c > 3 ? E(a3, ma, vs, 48, na) : z; b3 = c > 3 ? E(b3, mb, vs, 48, nb) : z;
        Vector512<float> ia = Vector512<float>.One / AllSum((a0 + a1) + (a2 + a3));
        Vector512<float> ib = Vector512<float>.One / AllSum((b0 + b1) + (b2 + b3));
        Vector512<float> w0 = RowMask.Mask(0, width);
        Avx512F.MaskStore(ya, w0, a0 * ia); Avx512F.MaskStore(yb, w0, b0 * ib);
        if (c > 1)
        {
            Vector512<float> w1 = RowMask.Mask(16, width);
            Avx512F.MaskStore(ya + 16, w1, a1 * ia); Avx512F.MaskStore(yb + 16, w1, b1 * ib);
        }
        if (c > 2)
        {
            Vector512<float> w2 = RowMask.Mask(32, width);
            Avx512F.MaskStore(ya + 32, w2, a2 * ia); Avx512F.MaskStore(yb + 32, w2, b2 * ib);
        }
        if (c > 3)
        {
            Vector512<float> w3 = RowMask.Mask(48, width);
            Avx512F.MaskStore(ya + 48, w3, a3 * ia); Avx512F.MaskStore(yb + 48, w3, b3 * ib);
        }
    }

    // Longer rows: three passes (max; exp and sum; scale), four vectors at a time, the ragged end masked.
    private static void ForwardLong(float* x, float* y, int n, float scale)
    {
        Vector512<float> ninf = Vector512.Create(float.NegativeInfinity);
        Vector512<float> a0 = ninf, a1 = ninf, a2 = ninf, a3 = ninf;
        int k = 0;
        for (; k <= n - 64; k += 64)
        {
            a0 = Vector512.MaxNative(a0, Vector512.Load(x + k));
            a1 = Vector512.MaxNative(a1, Vector512.Load(x + k + 16));
            a2 = Vector512.MaxNative(a2, Vector512.Load(x + k + 32));
            a3 = Vector512.MaxNative(a3, Vector512.Load(x + k + 48));
        }
        for (; k < n; k += 16) a0 = Vector512.MaxNative(a0, Avx512F.MaskLoad(x + k, RowMask.Mask(k, n), ninf));
        Vector512<float> vm = AllMax(Vector512.MaxNative(Vector512.MaxNative(a0, a1), Vector512.MaxNative(a2, a3)));
        Vector512<float> vs = Vector512.Create(scale);
        a0 = a1 = a2 = a3 = Vector512<float>.Zero;
        for (k = 0; k <= n - 64; k += 64)
        {
            Vector512<float> e0 = FastExp.Exp((Vector512.Load(x + k) - vm) * vs);
            Vector512<float> e1 = FastExp.Exp((Vector512.Load(x + k + 16) - vm) * vs);
            Vector512<float> e2 = FastExp.Exp((Vector512.Load(x + k + 32) - vm) * vs);
            Vector512<float> e3 = FastExp.Exp((Vector512.Load(x + k + 48) - vm) * vs);
            e0.Store(y + k); e1.Store(y + k + 16); e2.Store(y + k + 32); e3.Store(y + k + 48);
            a0 += e0; a1 += e1; a2 += e2; a3 += e3;
        }
        for (; k < n; k += 16)
        {
            Vector512<float> mask = RowMask.Mask(k, n);
            Vector512<float> e = Vector512.ConditionalSelect(mask,
                FastExp.Exp((Avx512F.MaskLoad(x + k, mask, ninf) - vm) * vs), Vector512<float>.Zero);
            Avx512F.MaskStore(y + k, mask, e);
            a0 += e;
        }
        Vector512<float> inv = Vector512<float>.One / AllSum((a0 + a1) + (a2 + a3));
        for (k = 0; k <= n - 16; k += 16) (Vector512.Load(y + k) * inv).Store(y + k);
        if (k < n)
        {
            Vector512<float> mask = RowMask.Mask(k, n);
            Avx512F.MaskStore(y + k, mask, Avx512F.MaskLoad(y + k, mask, Vector512<float>.Zero) * inv);
        }
    }

    // Butterfly reductions (partners differ in one index bit): every lane ends with the same bits, already broadcast.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> AllMax(Vector512<float> v)
    {
        v = Vector512.MaxNative(v, Avx512F.Shuffle4x128(v, v, 0b01_00_11_10));
        v = Vector512.MaxNative(v, Avx512F.Shuffle4x128(v, v, 0b10_11_00_01));
        v = Vector512.MaxNative(v, Avx512F.Permute4x32(v, 0b01_00_11_10));
        return Vector512.MaxNative(v, Avx512F.Permute4x32(v, 0b10_11_00_01));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> AllSum(Vector512<float> v)
    {
        v += Avx512F.Shuffle4x128(v, v, 0b01_00_11_10);
        v += Avx512F.Shuffle4x128(v, v, 0b10_11_00_01);
        v += Avx512F.Permute4x32(v, 0b01_00_11_10);
        return v + Avx512F.Permute4x32(v, 0b10_11_00_01);
    }

    /// <summary>
    /// <c>∂xⱼ += s·pⱼ(∂pⱼ − Σₖ pₖ∂pₖ)</c> over [0..n), or, with <paramref name="overwrite"/>, written instead of added
    /// and ∂x[n..width) set to zero (a causal row's masked part; without overwrite it is left alone).
    /// </summary>
    public static void Backward(float* p, float* dp, float* dx, int n, int width, float scale, bool overwrite)
    {
        if (!RowMask.IsSupported)
        {
            BackwardScalar(p, dp, dx, n, scale, overwrite);
            if (overwrite) Clear(dx + Math.Max(n, 0), width - Math.Max(n, 0));
        }
        else if (n <= Small)
        {
            BackwardSmall(p, dp, dx, n, Math.Min(width, Small), scale, overwrite);
            if (overwrite) Clear(dx + Small, width - Small);
        }
        else
        {
            BackwardLong(p, dp, dx, n, scale, overwrite);
            if (overwrite) Clear(dx + n, width - n);
        }
    }

    private static void BackwardSmall(float* p, float* dp, float* dx, int n, int width, float scale, bool overwrite)
    {
        Vector512<float> m0 = RowMask.Mask(0, n), m1 = RowMask.Mask(16, n);
        Vector512<float> m2 = RowMask.Mask(32, n), m3 = RowMask.Mask(48, n);
        Vector512<float> z = Vector512<float>.Zero;
        Vector512<float> p0 = Avx512F.MaskLoad(p, m0, z), p1 = Avx512F.MaskLoad(p + 16, m1, z);
        Vector512<float> p2 = Avx512F.MaskLoad(p + 32, m2, z), p3 = Avx512F.MaskLoad(p + 48, m3, z);
        Vector512<float> d0 = Avx512F.MaskLoad(dp, m0, z), d1 = Avx512F.MaskLoad(dp + 16, m1, z);
        Vector512<float> d2 = Avx512F.MaskLoad(dp + 32, m2, z), d3 = Avx512F.MaskLoad(dp + 48, m3, z);
        Vector512<float> dot = AllSum((p0 * d0 + p1 * d1) + (p2 * d2 + p3 * d3));
        Vector512<float> vs = Vector512.Create(scale);
        Vector512<float> t0 = (d0 - dot) * vs, t1 = (d1 - dot) * vs, t2 = (d2 - dot) * vs, t3 = (d3 - dot) * vs;
        if (overwrite)
        {
            // Lanes at or past n hold p = 0, so they store the masked part's zeros.
            Avx512F.MaskStore(dx, RowMask.Mask(0, width), t0 * p0);
            Avx512F.MaskStore(dx + 16, RowMask.Mask(16, width), t1 * p1);
            Avx512F.MaskStore(dx + 32, RowMask.Mask(32, width), t2 * p2);
            Avx512F.MaskStore(dx + 48, RowMask.Mask(48, width), t3 * p3);
            return;
        }
        Avx512F.MaskStore(dx, m0, Vector512.FusedMultiplyAdd(t0, p0, Avx512F.MaskLoad(dx, m0, z)));
        Avx512F.MaskStore(dx + 16, m1, Vector512.FusedMultiplyAdd(t1, p1, Avx512F.MaskLoad(dx + 16, m1, z)));
        Avx512F.MaskStore(dx + 32, m2, Vector512.FusedMultiplyAdd(t2, p2, Avx512F.MaskLoad(dx + 32, m2, z)));
        Avx512F.MaskStore(dx + 48, m3, Vector512.FusedMultiplyAdd(t3, p3, Avx512F.MaskLoad(dx + 48, m3, z)));
    }

    private static void BackwardLong(float* p, float* dp, float* dx, int n, float scale, bool overwrite)
    {
        Vector512<float> z = Vector512<float>.Zero, a0 = z, a1 = z, a2 = z, a3 = z;
        int k = 0;
        for (; k <= n - 64; k += 64)
        {
            a0 = Vector512.FusedMultiplyAdd(Vector512.Load(p + k), Vector512.Load(dp + k), a0);
            a1 = Vector512.FusedMultiplyAdd(Vector512.Load(p + k + 16), Vector512.Load(dp + k + 16), a1);
            a2 = Vector512.FusedMultiplyAdd(Vector512.Load(p + k + 32), Vector512.Load(dp + k + 32), a2);
            a3 = Vector512.FusedMultiplyAdd(Vector512.Load(p + k + 48), Vector512.Load(dp + k + 48), a3);
        }
        for (; k < n; k += 16)
        {
            Vector512<float> mask = RowMask.Mask(k, n);
            a0 = Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(p + k, mask, z), Avx512F.MaskLoad(dp + k, mask, z), a0);
        }
        Vector512<float> dot = AllSum((a0 + a1) + (a2 + a3)), vs = Vector512.Create(scale);
        for (k = 0; k < n; k += 16)
        {
            Vector512<float> mask = RowMask.Mask(k, n);
            Vector512<float> pk = Avx512F.MaskLoad(p + k, mask, z);
            Vector512<float> t = (Avx512F.MaskLoad(dp + k, mask, z) - dot) * vs;
            Vector512<float> r = overwrite
                ? t * pk
                : Vector512.FusedMultiplyAdd(t, pk, Avx512F.MaskLoad(dx + k, mask, z));
            Avx512F.MaskStore(dx + k, mask, r);
        }
    }

    /// <summary>Sets y[0..n) to zero (the masked part of a causal row).</summary>
    public static void Clear(float* y, int n)
    {
        if (n <= 0) return;
        if (!RowMask.IsSupported)
        {
            new Span<float>(y, n).Clear();
            return;
        }
        int k = 0;
        for (; k <= n - 16; k += 16) Vector512<float>.Zero.Store(y + k);
        if (k < n) Avx512F.MaskStore(y + k, RowMask.Mask(0, n - k), Vector512<float>.Zero);
    }

    private static void ForwardScalar(float* x, float* y, int n, float scale)
    {
        float max = float.NegativeInfinity, sum = 0f;
        for (int j = 0; j < n; j++) max = MathF.Max(max, x[j]);
        for (int j = 0; j < n; j++)
        {
            float e = FastExp.Exp((x[j] - max) * scale);
            y[j] = e;
            sum += e;
        }
        float inv = 1f / sum;
        for (int j = 0; j < n; j++) y[j] *= inv;
    }

    private static void BackwardScalar(float* p, float* dp, float* dx, int n, float scale, bool overwrite)
    {
        float dot = 0f;
        for (int j = 0; j < n; j++) dot = MathF.FusedMultiplyAdd(p[j], dp[j], dot);
        for (int j = 0; j < n; j++)
        {
            float t = (dp[j] - dot) * scale;
            dx[j] = overwrite ? t * p[j] : MathF.FusedMultiplyAdd(t, p[j], dx[j]);
        }
    }
}
