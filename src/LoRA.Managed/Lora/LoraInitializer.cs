using LoRA.Managed.Tensors;

namespace LoRA.Managed.Lora;

/// <summary>The initialisation rules of <see cref="LoraInit"/>, applied to a fresh pair of factors.</summary>
internal static class LoraInitializer
{
    /// <summary>
    /// Fills <paramref name="a"/> (r×in, PEFT's lora_A) and <paramref name="b"/> (out×r, lora_B); for PiSSA it
    /// also rewrites <paramref name="baseWeight"/> (out×in) to the residual.
    /// </summary>
    public static void Apply(LoraInit init, Tensor a, Tensor b, Tensor baseWeight, double scale,
        TorchGenerator generator,
        int? pissaIterations = null, int loftQIterations = 1)
    {
        int rank = a.Shape[0], inFeatures = a.Shape[1];
        switch (init)
        {
            case LoraInit.Default:
            {
                // PEFT: nn.init.kaiming_uniform_(lora_A, a=√5). gain = √(2/(1+a²)), std = gain/√fan_in,
                // bound = √3·std = √(6/((1+a²)·fan_in)) = 1/√in for a = √5; lora_B = 0 so ΔW = 0.
                double aNeg = Math.Sqrt(5.0);
                float bound = (float)Math.Sqrt(6.0 / ((1.0 + aNeg * aNeg) * inFeatures));
                generator.FillUniform(a.Data, -bound, bound);
                b.Data.Clear();
                break;
            }
            case LoraInit.Gaussian:
                // PEFT: nn.init.normal_(lora_A, std=1/r); lora_B = 0.
                generator.FillNormal(a.Data, 0f, 1f / rank);
                b.Data.Clear();
                break;
            case LoraInit.Svd:
            {
                // The blog: lora_B = U_r√S_r, lora_A = √S_r V_rᵀ, so B·A = W_r; W unchanged.
                var (left, right, _) = LowRank.TruncatedFactors(baseWeight, rank, 1.0);
                LowRank.CopyTo(left, b.Data);
                LowRank.CopyTo(right, a.Data);
                break;
            }
            case LoraInit.Pissa:
            {
                // PEFT's pissa_init divides S_r by the scale so that scale·B·A = W_r, then sets W ← W − W_r.
                // The residual is formed in double from the double factors, so the step-0 function
                // W_res + scale·B·A equals W up to float rounding of each stored matrix.
                if (scale == 0.0)
                    throw new ArgumentException("LoraInit.Pissa: the scale is 0, so no factors can carry W_r; " +
                        "use a non-zero alpha.");
                // Fast PiSSA's sketch is drawn from its own generator with a fixed seed, not the caller's: loading the
                // adapter later rebuilds the residual from the original base, which must give the same subspace.
                var (left, right, w) = pissaIterations is int niter
                    ? LowRank.RandomizedTruncatedFactors(baseWeight, rank, Math.Abs(scale), niter,
                        new TorchGenerator(0))
                    : LowRank.TruncatedFactors(baseWeight, rank, Math.Abs(scale));
                if (scale < 0) left = -left;
                LowRank.CopyTo(left, b.Data);
                LowRank.CopyTo(right, a.Data);
                LowRank.WriteResidual(w, scale, b, a, baseWeight);
                break;
            }
            case LoraInit.Olora:
                OLoraInit.Apply(a, b, baseWeight, scale);
                break;
            case LoraInit.LoftQ:
                LoftQInit.Apply(a, b, baseWeight, loftQIterations);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(init), init, "LoraInit: unknown initialisation.");
        }
    }
}
