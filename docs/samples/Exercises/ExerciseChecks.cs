using LoRA.Managed.Autograd;
using LoRA.Managed.Kernels;
using LoRA.Managed.Lora;
using LoRA.Managed.Models;
using LoRA.Managed.Models.Hf;
using LoRA.Managed.Nn;
using LoRA.Managed.Optim;
using LoRA.Managed.Samples.Derivations;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Samples.Exercises;

/// <summary>Checks each exercise's solution in <see cref="Solutions"/> against the library, one line each.</summary>
public static class ExerciseChecks
{
    /// <summary>Runs every check and prints "ok" or "FAIL" per exercise.</summary>
    public static void Run(TextWriter o)
    {
        o.WriteLine(Line("1.1 transpose", Transpose()));
        o.WriteLine(Line("2.1 naive GEMM with four sums", FourSums()));
        o.WriteLine(Line("3.1 backward of a ⊙ b", MulBackward()));
        o.WriteLine(Line("4.1 stable log softmax", LogSoftmaxRow()));
        o.WriteLine(Line("4.2 three Adam steps by hand", Adam()));
        o.WriteLine(Line("5.1 rank-2 LoRA backward with GEMM calls", LoraBackward()));
        o.WriteLine(Line("5.2 merging an adapter", Merge()));
        o.WriteLine(Line("6.1 the adapter's parameter count", LoraParameterCount()));
        o.WriteLine(Line("6.2 the truncation error from the singular values", TruncationError()));
        o.WriteLine(Line("8.1 an atomic save", AtomicWrite()));
        o.WriteLine(Line("9.1 greedy decoding with the KV cache", Greedy()));
        o.WriteLine(Line("9.2 RoPE on one vector", Rope()));
        o.WriteLine(Line("9.3 one NF4 block by hand", Nf4Block()));
    }

    private static string Line(string name, double error) =>
        error < 1e-4 ? $"exercise {name}: ok" : $"exercise {name}: FAIL (error {error:E2})";

    private static float[] Random(int n, ulong seed)
    {
        var a = new float[n];
        new TorchGenerator(seed).FillUniform(a, -1f, 1f);
        return a;
    }

    private static double MaxDiff(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        if (a.Length != b.Length) return double.PositiveInfinity;
        double m = 0;
        for (int i = 0; i < a.Length; i++) m = Math.Max(m, Math.Abs(a[i] - b[i]));
        return m;
    }

    private static double Transpose()
    {
        float[] x = Random(3 * 5, 1);
        var identity = new Tensor(3, 3);
        for (int i = 0; i < 3; i++) identity.Data[i * 3 + i] = 1f;
        Tensor t = Functional.MatMul(new Tensor(x, 3, 5), identity, transposeA: true);   // xᵀ·I, transposed by a flag
        return MaxDiff(Solutions.Transpose(x, 3, 5), t.Data);
    }

    private static double FourSums()
    {
        const int m = 7, k = 13, n = 9;
        float[] a = Random(m * k, 2), b = Random(k * n, 3), mine = new float[m * n], reference = new float[m * n];
        Solutions.NaiveFourSums(a, b, mine, m, n, k);
        GemmReference.Multiply(false, false, m, n, k, 1f, a, k, b, n, 0f, reference, n);
        return MaxDiff(mine, reference);
    }

    private static double MulBackward()
    {
        float[] a = Random(6, 4), b = Random(6, 5), dy = Random(6, 6);
        var ta = new Tensor((float[])a.Clone(), 6) { RequiresGrad = true };
        var tb = new Tensor((float[])b.Clone(), 6) { RequiresGrad = true };
        GradCheck.Loss(Functional.Mul(ta, tb), dy.Select(v => (double)v).ToArray()).Backward();
        var (da, db) = Solutions.MulBackward(a, b, dy);
        return Math.Max(MaxDiff(da, ta.Grad), MaxDiff(db, tb.Grad));
    }

    private static double LogSoftmaxRow()
    {
        float[] z = [1200, 1190, -300, 0.5f];
        var reference = new float[z.Length];
        LogSoftmax.Rows(z, reference, 1, z.Length);
        return MaxDiff(Solutions.LogSoftmaxRow(z), reference);
    }

    private static double Adam()
    {
        double[] g = [0.5, -4, 0.25];
        var p = new Parameter(1);
        p.Data[0] = 1f;
        var adam = new Adam([p], learningRate: 0.1);
        foreach (double v in g)
        {
            p.EnsureGrad()[0] = (float)v;
            adam.StepAndZeroGrad();
        }
        return Math.Abs(Solutions.Adam(1, g, 0.1) - p.Data[0]);
    }

    private static double LoraBackward()
    {
        const int n = 3, inF = 5, outF = 4, r = 2;
        const float s = 2f;
        float[] x = Random(n * inF, 7), a = Random(r * inF, 8), b = Random(outF * r, 9), dy = Random(n * outF, 10);
        var ta = new Tensor((float[])a.Clone(), r, inF) { RequiresGrad = true };
        var tb = new Tensor((float[])b.Clone(), outF, r) { RequiresGrad = true };
        Tensor low = Functional.Scale(Functional.Linear(Functional.Linear(new Tensor(x, n, inF), ta), tb), s);
        GradCheck.Loss(low, dy.Select(v => (double)v).ToArray()).Backward();
        var (da, db) = Solutions.LoraBackward(x, a, b, dy, n, inF, outF, r, s);
        return Math.Max(MaxDiff(da, ta.Grad), MaxDiff(db, tb.Grad));
    }

    private static double Merge()
    {
        const int n = 3, inF = 5, outF = 4, r = 2;
        const float s = 0.5f;
        float[] x = Random(n * inF, 11), w = Random(outF * inF, 12), a = Random(r * inF, 13), b = Random(outF * r, 14);
        using var _ = Tape.NoGrad();
        var tx = new Tensor(x, n, inF);
        Tensor low = Functional.Linear(Functional.Linear(tx, new Tensor(a, r, inF)), new Tensor(b, outF, r));
        Tensor adapted = Functional.Add(Functional.Linear(tx, new Tensor(w, outF, inF)), Functional.Scale(low, s));
        Tensor merged = Functional.Linear(tx, new Tensor(Solutions.Merge(w, a, b, inF, outF, r, s), outF, inF));
        return MaxDiff(merged.Data, adapted.Data);
    }

    private static double Greedy()
    {
        CausalLm model = HfModel.Load(Path.Combine(Root(), "tests", "fixtures", "hf", "llama-gqa-tied"));
        int[] prompt = [1, 7, 19, 3];
        int[] expected = model.Generate(prompt, new GenerationSettings { MaxNewTokens = 6, EosTokenIds = [] });
        return Solutions.Greedy(model, prompt, 6).SequenceEqual(expected) ? 0 : 1;
    }

    private static double Rope()
    {
        const int d = 8, position = 5;
        var rope = new RotaryEmbedding(d, 10000, null);
        rope.Ensure(position + 1);
        float[] x = Random(d, 15), reference = new float[d];
        RopeKernel.Forward(x, reference, 1, 1, 1, d, position, rope.Cos, rope.Sin);
        return MaxDiff(Solutions.Rope(x, position, rope.InverseFrequencies), reference);
    }

    private static double Nf4Block()
    {
        float[] w = Random(Kernels.Nf4.BlockSize, 16);
        var packed = new byte[Kernels.Nf4.PackedLength(w.Length)];
        var absmax = new float[1];
        var reference = new float[w.Length];
        Kernels.Nf4.Quantize(w, packed, absmax);
        Kernels.Nf4.Dequantize(packed, absmax, 0, reference);
        return MaxDiff(Solutions.Nf4RoundTrip(w), reference);
    }

    private static string Root()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "LoRA.Managed.sln"))) return dir.FullName;
        throw new DirectoryNotFoundException("LoRA.Managed.sln not found above " + AppContext.BaseDirectory);
    }

    private static double LoraParameterCount()
    {
        double worst = 0;
        for (int r = 1; r <= 8; r++)
        {
            var g = new TorchGenerator(15);
            var config = new LoraConfig { Rank = r, Alpha = r, TargetModules = ["layers.5"] };
            long actual = LoraModel.GetPeftModel(Mlp.Blog(g), config, g).TrainableParameterCount;  // the 256→10 layer
            worst = Math.Max(worst, Math.Abs(actual - Solutions.LoraParameterCount(256, 10, r)));
        }
        return worst;
    }

    private static double TruncationError()
    {
        var w = new Tensor(Random(8 * 6, 16), 8, 6);
        double worst = 0;
        for (int r = 1; r <= 6; r++)
        {
            LowRankApproximation approx = LowRank.Approximate(w, r);   // FrobeniusErrors[r] = ‖W − W_r‖ measured
            worst = Math.Max(worst, Math.Abs(Solutions.TruncationError(approx.S, r) - approx.FrobeniusErrors[r]));
        }
        return worst;
    }

    private static double AtomicWrite()
    {
        string dir = Directory.CreateTempSubdirectory("lora-exercise-").FullName;
        try
        {
            string path = Path.Combine(dir, "adapter_model.safetensors");
            File.WriteAllText(path, "old");
            try
            {
                Solutions.AtomicWrite(path, s =>
                {
                    s.Write("ne"u8);
                    throw new IOException("disk full (simulated)");
                });
            }
            catch (IOException) { }
            bool keptOld = File.ReadAllText(path) == "old" && Directory.GetFiles(dir).Length == 1;
            Solutions.AtomicWrite(path, s => s.Write("new"u8));
            bool wroteNew = File.ReadAllText(path) == "new" && Directory.GetFiles(dir).Length == 1;
            return keptOld && wroteNew ? 0 : 1;
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}

