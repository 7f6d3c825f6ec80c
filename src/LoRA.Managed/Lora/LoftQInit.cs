using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;
using MathNet.Numerics.LinearAlgebra;

namespace LoRA.Managed.Lora;

/// <summary>
/// LoftQ's initialisation (Li et al. 2023, Algorithm 1; PEFT's <c>loftq_init</c> with 4 bits): starting from the
/// residual R = W, repeat: Q = NF4(R) (quantise, then dequantise), the best rank-r approximation L·R' of W − Q (the
/// SVD's <c>U_r√S_r</c> and <c>√S_r V_rᵀ</c>), R = W − L·R'. The base becomes Q and the factors lora_B = L,
/// lora_A = R', so the quantised base and the adapter together start as close to W as a rank-r correction can bring
/// them.
/// </summary>
/// <remarks>
/// As PEFT's <c>loftq_init</c>, the factors are not divided by the scale, and the quantisation is bitsandbytes' NF4
/// without double-quantised scales (<c>compress_statistics=False</c>): blocks of 64 of the row-major weight, one float
/// absmax each (<see cref="Nf4"/>).
/// </remarks>
internal static class LoftQInit
{
    public static void Apply(Tensor a, Tensor b, Tensor baseWeight, int iterations)
    {
        if (iterations < 1)
            throw new ArgumentOutOfRangeException(nameof(iterations), iterations, "LoftQ: at least one iteration.");
        int rank = a.Shape[0];
        Matrix<double> w = LowRank.ToMatrix(baseWeight);
        var residual = (float[])baseWeight.Array.Clone();
        float[] quantised = new float[residual.Length];
        Matrix<double>? left = null, right = null;
        for (int i = 0; i < iterations; i++)
        {
            RoundTripNf4(residual, quantised);
            var lost = w - LowRank.ToMatrix(new Tensor(quantised, baseWeight.Shape));
            (left, right, _) = LowRank.TruncatedFactors(LowRank.ToTensor(lost), rank, 1.0);
            LowRank.CopyTo(w - left * right, residual);
        }
        LowRank.CopyTo(left!, b.Data);
        LowRank.CopyTo(right!, a.Data);
        quantised.CopyTo(baseWeight.Data);
    }

    /// <summary>NF4 quantisation then dequantisation of <paramref name="source"/>, block by block.</summary>
    internal static void RoundTripNf4(ReadOnlySpan<float> source, Span<float> destination)
    {
        var packed = new byte[Nf4.PackedLength(source.Length)];
        var absmax = new float[Nf4.BlockCount(source.Length)];
        Nf4.Quantize(source, packed, absmax);
        Nf4.Dequantize(packed, absmax, 0, destination);
    }
}
