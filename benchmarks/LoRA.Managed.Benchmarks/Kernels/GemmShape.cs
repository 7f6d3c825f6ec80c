using LoRA.Managed.Models;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Benchmarks.Kernels;

/// <summary>A GEMM problem <c>C[m×n] = op(A)·op(B)</c> with op(A) m×k; its text is what BenchmarkDotNet prints as the
/// parameter.</summary>
/// <param name="M">Rows of C.</param>
/// <param name="K">The shared dimension.</param>
/// <param name="N">Columns of C.</param>
/// <param name="TransA">A is stored k×m.</param>
/// <param name="TransB">B is stored n×k.</param>
public sealed record GemmShape(int M, int K, int N, bool TransA, bool TransB)
{
    /// <summary>The blog MLP's products at batch 64, per Linear(in→out): forward x·Wᵀ, weight gradient dyᵀ·x, input
    /// gradient dy·W.</summary>
    public static IEnumerable<GemmShape> Mlp()
    {
        foreach (var (inF, outF) in new[] { (784, 512), (512, 256), (256, 10) })
        {
            yield return new GemmShape(64, inF, outF, false, true);
            yield return new GemmShape(outF, 64, inF, true, false);
            yield return new GemmShape(64, outF, inF, false, false);
        }
    }

    /// <summary>Row stride of A as stored.</summary>
    public int Lda => TransA ? M : K;

    /// <summary>Row stride of B as stored.</summary>
    public int Ldb => TransB ? K : N;

    /// <summary>Operands stored as the flags say, uniform in [−1, 1) from a fixed seed, and a zeroed C.</summary>
    public (float[] A, float[] B, float[] C) RandomOperands(ulong seed = 1)
    {
        var g = new TorchGenerator(seed);
        float[] a = new float[M * K], b = new float[K * N];
        g.FillUniform(a, -1f, 1f);
        g.FillUniform(b, -1f, 1f);
        return (a, b, new float[M * N]);
    }

    /// <summary>Floating-point operations of one product (2·m·n·k).</summary>
    public double Flops => 2.0 * M * N * K;

    /// <inheritdoc />
    public override string ToString() => $"{M}x{K}x{N} {(TransA ? 'T' : 'N')}{(TransB ? 'T' : 'N')}";
}
