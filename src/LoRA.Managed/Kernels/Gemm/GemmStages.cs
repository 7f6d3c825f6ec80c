using System.Numerics;
using System.Runtime.Intrinsics;

namespace LoRA.Managed.Kernels;

/// <summary>
/// The steps from the naive triple loop to <see cref="Gemm"/>, each runnable on its own so that
/// docs/02-matrix-multiply.md can measure what every step buys. All compute <c>C = A·B</c> for row-major,
/// contiguous A (m×k), B (k×n) and C (m×n) on one thread; <see cref="GemmReference"/> is the first step.
/// </summary>
public static unsafe class GemmStages
{
    /// <summary>Which stage to run.</summary>
    public enum Stage
    {
        /// <summary>i-j-k triple loop: each C[i,j] walks a column of B, one cache line per element.</summary>
        NaiveIjk,
        /// <summary>The same i-j-k loop and the same column walk down B, but summing into four accumulators
        /// (p mod 4): it separates the cost of the one dependent add chain from the cost of the loads.</summary>
        NaiveIjk4,
        /// <summary>i-k-j loop order with <see cref="Vector{T}"/>: rows of B and C stream contiguously, SIMD over
        /// j.</summary>
        IkjVector,
        /// <summary>The five loops of <see cref="Gemm"/> over packed panels with a scalar micro-kernel.</summary>
        PackedScalar,
        /// <summary>The same with the 6×16 <see cref="Vector256{T}"/> register-blocked micro-kernel.</summary>
        Packed256,
        /// <summary>The same with the 8×32 <see cref="Vector512{T}"/> register-blocked micro-kernel.</summary>
        Packed512,
    }

    /// <summary>True when <paramref name="stage"/> can run on this machine (the vector kernels need the
    /// hardware).</summary>
    public static bool IsSupported(Stage stage) => stage switch
    {
        Stage.Packed512 => Vector512.IsHardwareAccelerated,
        Stage.Packed256 => Vector256.IsHardwareAccelerated,
        _ => true,
    };

    /// <summary>Runs one stage: <c>C = A·B</c>, A m×k, B k×n, C m×n, all row-major and contiguous.</summary>
    /// <exception cref="ArgumentException">A span is too short for its shape.</exception>
    /// <exception cref="PlatformNotSupportedException">The stage's vector width is not accelerated here.</exception>
    public static void Multiply(Stage stage, int m, int n, int k, ReadOnlySpan<float> a, ReadOnlySpan<float> b,
        Span<float> c)
    {
        GemmArguments.Check(false, false, m, n, k, a.Length, k, b.Length, n, c.Length, n);
        if (!IsSupported(stage))
            throw new PlatformNotSupportedException($"GemmStages: {stage} needs a vector width this machine " +
                "does not accelerate.");
        switch (stage)
        {
            case Stage.NaiveIjk:
                GemmReference.Multiply(false, false, m, n, k, 1f, a, k, b, n, 0f, c, n);
                return;
            case Stage.NaiveIjk4:
                Ijk4(m, n, k, a, b, c);
                return;
            case Stage.IkjVector:
                Ikj(m, n, k, a, b, c);
                return;
        }
        if (m == 0 || n == 0) return;
        if (k == 0) { c[..(m * n)].Clear(); return; }
        var kernel = stage switch
        {
            Stage.Packed512 => MicroKernelKind.Vector512x8x32,
            Stage.Packed256 => MicroKernelKind.Vector256x6x16,
            _ => MicroKernelKind.Scalar,
        };
        fixed (float* pa = a, pb = b, pc = c)
            Gemm.Serial(kernel, false, false, m, n, k, 1f, pa, k, pb, n, 0f, pc, n);
    }

    /// <summary>
    /// The naive loop with four partial sums. Each <c>sum += a·b</c> of the naive loop must wait for the previous
    /// one (an add's latency, ~4 cycles), so the core runs one multiply-add every 4 cycles whatever the loads cost;
    /// four independent chains let four be in flight. The loads are the same column walk down B, so the difference
    /// in speed between the two stages is the latency chain, not the cache. (The sums associate differently, so the
    /// result can differ from the naive loop's in the last bits.)
    /// </summary>
    private static void Ijk4(int m, int n, int k, ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c)
    {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                float s0 = 0f, s1 = 0f, s2 = 0f, s3 = 0f;
                int p = 0;
                for (; p <= k - 4; p += 4)
                {
                    s0 += a[i * k + p] * b[p * n + j];
                    s1 += a[i * k + p + 1] * b[(p + 1) * n + j];
                    s2 += a[i * k + p + 2] * b[(p + 2) * n + j];
                    s3 += a[i * k + p + 3] * b[(p + 3) * n + j];
                }
                for (; p < k; p++) s0 += a[i * k + p] * b[p * n + j];
                c[i * n + j] = (s0 + s1) + (s2 + s3);
            }
    }

    /// <summary>
    /// Loop order i-k-j: for each row i of C and each p, <c>C[i,:] += A[i,p]·B[p,:]</c>. The innermost loop
    /// now reads a row of B and updates a row of C, both contiguous, so it vectorises; but every step of p
    /// still loads and stores the whole row of C, and B is streamed from memory once per row of A.
    /// </summary>
    private static void Ikj(int m, int n, int k, ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c)
    {
        int w = Vector<float>.Count;
        for (int i = 0; i < m; i++)
        {
            Span<float> ci = c.Slice(i * n, n);
            ci.Clear();
            for (int p = 0; p < k; p++)
            {
                float aip = a[i * k + p];
                ReadOnlySpan<float> bp = b.Slice(p * n, n);
                var va = new Vector<float>(aip);
                int j = 0;
                for (; j <= n - w; j += w)
                    (new Vector<float>(ci.Slice(j)) + va * new Vector<float>(bp.Slice(j))).CopyTo(ci.Slice(j));
                for (; j < n; j++) ci[j] += aip * bp[j];
            }
        }
    }
}
