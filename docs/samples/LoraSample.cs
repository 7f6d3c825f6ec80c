using LoRA.Managed.Models;
using LoRA.Managed.Autograd;
using LoRA.Managed.Lora;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Samples;

/// <summary>Chapter 5: the blog's 4×4 SVD example, Eckart–Young, and what each initialisation does at step 0.</summary>
public static class LoraSample
{
    /// <summary>Prints the rank-2 approximation, the error by rank, and the step-0 change of each init.</summary>
    public static void Run(TextWriter o)
    {
        // region: svd
        Tensor w = new TorchGenerator(13).Rand(4, 4);          // torch.manual_seed(13); torch.rand(4, 4)
        LowRankApproximation svd = LowRank.Approximate(w, rank: 2);
        o.WriteLine($"W[0] = [{Row(w, 0)}]");
        o.WriteLine($"S = [{string.Join(", ", svd.S.Select(s => s.ToString("F4")))}]");
        o.WriteLine($"(AB)[0] = [{Row(svd.Approximation, 0)}]");   // A = U_r√S_r (4×2), B = √S_r V_rᵀ (2×4)
        // endregion

        // region: eckart-young
        for (int k = 1; k <= 4; k++)
        {
            double dropped = Math.Sqrt(svd.S.Skip(k).Sum(s => s * s));
            o.WriteLine($"rank {k}: |W - W_k|_F = {svd.FrobeniusErrors[k]:F4}, sqrt(sum of dropped " +
                $"s^2) = {dropped:F4}");
        }
        // endregion

        // region: inits
        var x = new TorchGenerator(1).Rand(3, 256);
        foreach (LoraInit init in new[] { LoraInit.Svd, LoraInit.Pissa, LoraInit.Default })
        {
            var model = Mlp.Blog(new TorchGenerator(0));
            Tensor before, after;
            using (Tape.NoGrad()) before = model.Layers[5].Forward(x);
            var config = new LoraConfig { Rank = 4, Alpha = 1, Scaling = LoraScaling.Alpha, Init = init,
                TargetModules = ["layers.5"] };
            PeftModel peft = LoraModel.GetPeftModel(model, config, new TorchGenerator(0));
            using (Tape.NoGrad()) after = model.Layers[5].Forward(x);
            double change = Enumerable.Range(0, before.Count).Max(i => Math.Abs(after[i] - before[i]));
            o.WriteLine($"{init,-7}: max |y_adapted - y_base| at step 0 = " +
                $"{(change < 1e-5 ? "0 (below 1e-5)" : change.ToString("F3"))}; {peft.TrainableParameterSummary()}");
        }
        // endregion
    }

    private static string Row(Tensor t, int i) =>
        string.Join(", ", Enumerable.Range(0, t.Shape[1]).Select(j => t[i, j].ToString("F4")));
}
