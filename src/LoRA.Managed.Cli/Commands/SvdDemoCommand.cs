using System.CommandLine;
using System.Globalization;
using LoRA.Managed.Lora;
using LoRA.Managed.Tensors;
using Spectre.Console;

namespace LoRA.Managed.Cli.Commands;

/// <summary>
/// <c>lora svd-demo</c>: the blog's first example. <c>torch.manual_seed(13); W = torch.rand(4, 4)</c>, its SVD
/// <c>W = U·S·Vᵀ</c>, the rank-r factors <c>A = U_r·√S_r</c> and <c>B = √S_r·V_rᵀ</c>, the approximation A·B,
/// and the Frobenius error ‖W − W_k‖ for every rank k (Eckart–Young: it equals √(Σ_{j≥k} σⱼ²)).
/// </summary>
internal static class SvdDemoCommand
{
    public static Command Create(CliContext context)
    {
        var seed = new Option<ulong>("--seed") { Description = "torch.manual_seed for W (the blog: 13).",
            DefaultValueFactory = _ => 13UL };
        var size = CommonOptions.Int("--size", 4, 1, "W is size×size, drawn as torch.rand (the blog: 4).");
        var rank = CommonOptions.Int("--rank", 2, 1, "Rank r of the approximation (the blog: 2).");
        var command = new Command("svd-demo",
            "The blog's low-rank approximation by SVD: W = U S Vt, A = U_r sqrt(S_r), B = sqrt(S_r) V_r^T, W ≈ AB.")
        {
            seed, size, rank,
        };
        RecipeCommand.SetAction(command,
            parse => Run(context, parse.GetValue(seed), parse.GetValue(size), parse.GetValue(rank)), threads: false);
        return command;
    }

    private static Dictionary<string, object?> Run(CliContext context, ulong seed, int size, int rank)
    {
        if (rank > size)
            throw new ArgumentException($"--rank {rank} is larger than --size {size}: a {size}×{size} matrix has " +
                $"rank at most {size}.");
        Tensor w = new TorchGenerator(seed).Rand(size, size);
        LowRankApproximation svd = LowRank.Approximate(w, rank);
        context.Output.WriteLine($"torch.manual_seed({seed}); W = torch.rand({size}, {size}); rank r = {rank}");
        Print(context, "W", Rows(w));
        Print(context, "U", Rows(svd.U));
        Print(context, "S (singular values)", [svd.S]);
        Print(context, "Vt", Rows(svd.Vt));
        Print(context, $"A = U_r·√S_r ({size}×{rank}; PEFT's lora_B)", Rows(svd.A));
        Print(context, $"B = √S_r·V_rᵀ ({rank}×{size}; PEFT's lora_A)", Rows(svd.B));
        Print(context, $"W ≈ A·B (rank {rank})", Rows(svd.Approximation));
        double[] errors = svd.FrobeniusErrors.Skip(1).ToArray();
        var table = new Table { Border = context.Border,
            Title = new TableTitle("Frobenius error ‖W − W_k‖ by rank k") };
        table.AddColumn("rank k");
        table.AddColumn(new TableColumn("‖W − W_k‖_F").RightAligned());
        table.AddColumn(new TableColumn("√(Σ_{j>k} σ_j²)").RightAligned());
        for (int k = 1; k <= errors.Length; k++)
            table.AddRow(k.ToString(CultureInfo.InvariantCulture),
                errors[k - 1].ToString("F6", CultureInfo.InvariantCulture),
                Math.Sqrt(svd.S.Skip(k).Sum(s => s * s)).ToString("F6", CultureInfo.InvariantCulture));
        context.Console.Write(table);

        return new Dictionary<string, object?>
        {
            ["W"] = Rows(w),
            ["U"] = Rows(svd.U),
            ["S"] = svd.S,
            ["Vt"] = Rows(svd.Vt),
            ["A"] = Rows(svd.A),
            ["B"] = Rows(svd.B),
            ["W_approx"] = Rows(svd.Approximation),
            ["frobenius_error_by_rank"] = errors,
        };
    }

    private static double[][] Rows(Tensor t)
    {
        int rows = t.Shape[0], cols = t.Shape[1];
        return Enumerable.Range(0, rows).Select(i => Enumerable.Range(0, cols).Select(j => (double)t[i, j]).ToArray())
            .ToArray();
    }

    private static void Print(CliContext context, string title, double[][] rows)
    {
        context.Output.WriteLine(title + ":");
        foreach (double[] row in rows)
            context.Output.WriteLine("  [" +
                string.Join(", ", row.Select(v => v.ToString("F4", CultureInfo.InvariantCulture).PadLeft(7))) + "]");
    }
}
