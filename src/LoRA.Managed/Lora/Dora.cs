using System.Buffers;
using LoRA.Managed.Autograd;
using LoRA.Managed.Autograd.Ops;
using LoRA.Managed.Kernels;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;
using MathNet.Numerics.LinearAlgebra;

namespace LoRA.Managed.Lora;

/// <summary>
/// DoRA, weight-decomposed low-rank adaptation (Liu et al. 2024), as PEFT's <c>lora/dora.py</c> and
/// <c>variants.DoraLinearVariant</c> compute it. The adapted weight is <c>W' = m ⊙ (W + s·B·A) / ‖W + s·B·A‖</c>, the
/// norm taken per output feature (each row of the (out, in) weight) and treated as a constant in backward (§4.3 of the
/// paper: "detaching it from the gradient graph"). The magnitude m starts as that norm, so a new adapter changes
/// nothing; it trains beside A and B.
/// </summary>
/// <remarks>
/// The forward never forms W': with g = m / ‖W + s·B·A‖ it is <c>g ⊙ (x·Wᵀ + s·(x·Aᵀ)·Bᵀ) + b</c>
/// (<see cref="DoraCombineOp"/>). With dropout while training PEFT feeds the dropped-out input x' to both the low-rank
/// product and a second base product: <c>x·Wᵀ + b + (g − 1) ⊙ x'·Wᵀ + g ⊙ s·(x'·Aᵀ)·Bᵀ</c>, which is kept here.
/// The norm costs one out×in×r product per forward (B·A), as in PEFT.
/// </remarks>
internal static class Dora
{
    /// <summary>The DoRA layer's output for <paramref name="input"/>; <paramref name="dropped"/> is the dropped-out
    /// input while training with dropout, else null. <paramref name="norm"/> replaces the computed norm (tests
    /// freeze it to check gradients by finite differences).</summary>
    public static Tensor Forward(Tensor input, Tensor? dropped, Linear baseLayer, Tensor a, Tensor b, Tensor magnitude,
        float scale, Tensor? norm = null)
    {
        bool inOut = baseLayer.FanInFanOut;
        norm ??= WeightNorm(baseLayer.Weight, inOut, a, b, scale);
        Tensor u = Functional.Linear(Functional.Linear(dropped ?? input, a), b);
        if (dropped is null)
        {
            Tensor product = Functional.Linear(input, baseLayer.Weight, null, inOut);
            return DoraCombineOp.Apply(null, product, u, magnitude, norm, scale, baseLayer.Bias);
        }
        Tensor full = Functional.Linear(input, baseLayer.Weight, baseLayer.Bias, inOut);
        Tensor z = Functional.Linear(dropped, baseLayer.Weight, null, inOut);
        return DoraCombineOp.Apply(full, z, u, magnitude, norm, scale, null);
    }

    /// <summary>
    /// ‖W + s·B·A‖ per output feature (PEFT's <c>get_weight_norm</c>) as a tape tensor of length out that nothing
    /// differentiates. W + s·B·A is formed in float as PEFT does; the squares are summed in double.
    /// </summary>
    public static Tensor WeightNorm(Tensor weight, bool inOut, Tensor a, Tensor b, float scale)
    {
        Tensor norm = Tape.NewTensor([b.Shape[0]]);
        FillWeightNorm(weight, inOut, a, b, scale, norm.Data);
        return norm;
    }

    /// <summary>Writes ‖W + s·B·A‖ per output feature into <paramref name="norm"/>.</summary>
    public static void FillWeightNorm(Tensor weight, bool inOut, Tensor a, Tensor b, float scale, Span<float> norm)
    {
        int r = a.Shape[0], inF = a.Shape[1], outF = b.Shape[0];
        GradientPool pool = GradientPool.Current;
        float[] sum = pool.Rent(outF * inF);
        weight.Data.CopyTo(sum);
        if (!inOut)
        {
            // sum (out, in) += s·B·A
            Gemm.Multiply(false, false, outF, inF, r, scale, b.Data, r, a.Data, inF, 1f, sum, inF);
            for (int j = 0; j < outF; j++)
            {
                double acc = 0;
                foreach (float v in sum.AsSpan(j * inF, inF)) acc += (double)v * v;
                norm[j] = (float)Math.Sqrt(acc);
            }
        }
        else
        {
            // sum (in, out) += s·Aᵀ·Bᵀ, the Conv1D layout; the norm runs down each column.
            Gemm.Multiply(true, true, inF, outF, r, scale, a.Data, inF, b.Data, r, 1f, sum, outF);
            double[] acc = ArrayPool<double>.Shared.Rent(outF);
            Array.Clear(acc, 0, outF);
            for (int i = 0; i < inF; i++)
            {
                ReadOnlySpan<float> row = sum.AsSpan(i * outF, outF);
                for (int j = 0; j < outF; j++) acc[j] += (double)row[j] * row[j];
            }
            for (int j = 0; j < outF; j++) norm[j] = (float)Math.Sqrt(acc[j]);
            ArrayPool<double>.Shared.Return(acc);
        }
        pool.Return(sum);
    }

    /// <summary>
    /// The merged weight in the base's stored layout (PEFT's <c>merge_safe</c>):
    /// <c>(m / ‖W + ΔW‖) ⊙ (W + ΔW)</c>, each output feature's row (a column in the Conv1D layout) rescaled, in
    /// double. <paramref name="delta"/> is ΔW = s·B·A, (out, in).
    /// </summary>
    public static Matrix<double> MergedWeight(Tensor weight, bool inOut, Matrix<double> delta,
        ReadOnlySpan<float> magnitude)
    {
        Matrix<double> sum = LowRank.ToMatrix(weight) + (inOut ? delta.Transpose() : delta);
        if (inOut) sum = sum.Transpose();   // (out, in) while rescaling
        for (int j = 0; j < sum.RowCount; j++)
        {
            // PEFT divides in the weight's dtype: the norm is rounded to float first, then m / norm.
            float n = (float)sum.Row(j).L2Norm();
            double factor = magnitude[j] / n;
            sum.SetRow(j, sum.Row(j) * factor);
        }
        return inOut ? sum.Transpose() : sum;
    }
}
