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
    public static void Multiply(Stage stage, int m, int n, int k, ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c)
    {
        GemmArguments.Check(false, false, m, n, k, a.Length, k, b.Length, n, c.Length, n);
        if (!IsSupported(stage)) throw new PlatformNotSupportedException($"GemmStages: {stage} needs a vector width this machine does not accelerate.");
        switch (stage)
        {
            case Stage.NaiveIjk:
                GemmReference.Multiply(false, false, m, n, k, 1f, a, k, b, n, 0f, c, n);
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
