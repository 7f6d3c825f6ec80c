using System.Text.RegularExpressions;
using LoRA.Managed.Samples;

namespace LoRA.Managed.Tests.Docs;

/// <summary>
/// Keeps docs/ from rotting: every listing marked <c>// from: PATH</c> must appear verbatim in that file,
/// every relative link must resolve, and every sample must print what its chapter quotes.
/// </summary>
public partial class DocsTests
{
    // The chapters, and the README (as "../README.md"), whose library example is held to the same rule.
    private static IEnumerable<string> Chapters() =>
        Directory.GetFiles(Path.Combine(RepoPaths.Root, "docs"), "*.md").Select(Path.GetFileName).OfType<string>()
            .Order()
            .Append("../README.md");

    [GeneratedRegex(@"```csharp\n// from: (?<path>\S+)\n(?<body>.*?)```", RegexOptions.Singleline)]
    private static partial Regex Listing();

    [GeneratedRegex(@"\]\((?<link>[^)#:]+)(#[^)]*)?\)")]
    private static partial Regex Link();

    [TestCaseSource(nameof(Chapters))]
    public void ListingsAreCopiedFromCompiledSources(string chapter)
    {
        string text = File.ReadAllText(Path.Combine(RepoPaths.Root, "docs", chapter)).Replace("\r\n", "\n");
        foreach (Match m in Listing().Matches(text))
        {
            string path = Path.Combine(RepoPaths.Root, m.Groups["path"].Value);
            Assert.That(File.Exists(path), Is.True,
                $"{chapter}: listing source {m.Groups["path"].Value} does not exist");
            string[] want = Lines(m.Groups["body"].Value);
            string[] have = Lines(File.ReadAllText(path));
            bool found = Enumerable.Range(0, Math.Max(0, have.Length - want.Length + 1))
                .Any(i => have.AsSpan(i, want.Length).SequenceEqual(want));
            Assert.That(found, Is.True,
                $"{chapter}: a listing from {m.Groups["path"].Value} no longer matches the " +
                $"source:\n{m.Groups["body"].Value}");
        }
    }

    [TestCaseSource(nameof(Chapters))]
    public void RelativeLinksResolve(string chapter)
    {
        string text = File.ReadAllText(Path.Combine(RepoPaths.Root, "docs", chapter));
        foreach (Match m in Link().Matches(text))
        {
            string folder = Path.GetDirectoryName(Path.GetFullPath(Path.Combine(RepoPaths.Root, "docs", chapter)))!;
            string target = Path.GetFullPath(Path.Combine(folder, m.Groups["link"].Value));
            Assert.That(File.Exists(target) || Directory.Exists(target), Is.True,
                $"{chapter}: broken link {m.Groups["link"].Value}");
        }
    }

    [TestCase("tensors", "shape [2, 3], x[1,0] = 40", "y = [[1, 2], [40, 5]]")]
    [TestCase("autograd", "tape holds 3 ops, L = 6", "dL/dw = [2, -4, 6, 2, -4, 6]", "dL/dw[0] = 4",
        "under NoGrad the tape holds 0 ops")]
    [TestCase("mlp", "log softmax = [-0.000045, -10.000046, -1500.0]", "naive exp(1200) = Infinity",
        "g =  0.5: theta = 0.9000", "g =  0.5: theta = 0.8000", "g =   -4: theta = 0.8495",
        "blog MLP: 535,818 parameters")]
    [TestCase("lora", "W[0] = [0.0918, 0.4794, 0.8106, 0.0151]", "S = [1.7940, 0.9258, 0.7783, 0.0498]",
        "(AB)[0] = [0.0374, 0.5079, 0.4906, 0.3878]", "rank 2: |W - W_k|_F = 0.7799, sqrt(sum of dropped s^2) = 0.7799",
        "Svd    : max |y_adapted - y_base| at step 0 = 0.613",
        "Pissa  : max |y_adapted - y_base| at step 0 = 0 (below 1e-5)",
        "Default: max |y_adapted - y_base| at step 0 = 0 (below 1e-5)",
        "trainable params: 1,064 || all params: 536,882 || trainable%: 0.1982")]
    [TestCase("quickstart", "trainable params: 1,064 || all params: 536,882 || trainable%: 0.1982",
        "adapter_config.json, adapter_model.safetensors")]
    [TestCase("recipe", "adapter: 1,064 of 535,818 parameters", "8-9 before 0.00, after 0.83; 0-7 after 0.00")]
    [TestCase("hf", "Once upon a time, there was a little girl named Lily. She loved to play outside in the park",
        "trainable params: 4,480 || all params: 264,512 || trainable%: 1.6937",
        "adapter_config.json, adapter_model.safetensors")]
    [TestCase("hfmodels", "llama: hidden 16, 2 layers, 4 query heads, 2 key/value heads of 8",
        "model.layers.0.self_attn.q_proj.weight F32 [32, 16]", "model.layers.0.self_attn.k_proj.weight F32 [16, 16]",
        "our parameter: model.layers.0.self_attn.q_proj.weight",
        "gpt2: file key h.0.attn.c_attn.weight [16, 48] -> our transformer.h.0.attn.c_attn.weight, " +
        "a Conv1D(nf=48, nx=16)",
        "byte-level: low er Ġlow est Ġ Ã © -> \"lower lowest é\"",
        "sentencepiece: <s> ▁ P i p ▁a t e ▁ 3 ▁f is h ▁for ▁ € 1 ▁a t ▁the ▁ <0xE7> <0x8C> <0xAB> ▁c a f é",
        "decoded: \"Pip ate 3 fish for €1 at the 猫 café\"",
        "kv cache: 8 positions cached, 16 floats per position and layer; max |cached - full| = 0 (below 1e-5)")]
    [TestCase("qlora", "absmax 0.0620", "index           4      2     11      5",
        "max |w - expanded| / absmax = 0.1474 <= 0.1519 (half the widest gap between levels)",
        "Nf4 :   6.0 MB for 5632×2048 (4.127 bits a weight; f32 is 46.1 MB)",
        "y = x·Wᵀ through the NF4 panels equals the float GEMM over the expanded W: True")]
    [TestCase("derivations",
        "linear: dW = dYᵀ·x, dx = dY·W, db = Σ dY: finite differences agree to < 1e-6, the " +
        "library's backward to < 1e-4",
        "softmax + cross-entropy: dz = (p − onehot(y)) / B: finite differences agree to < 1e-6, the " +
        "library's backward to < 1e-4",
        "log Σ exp(z) at z = [1000, 999, 998]: without the max Infinity, with it 1000.4076",
        "Adam: m_1 = 0.05 raw, 0.50 corrected; five steps of lr 0.01 move θ from 1 to 0.9500",
        "Adam's first moment after 2,000 zero gradients: 4 × 2^-149 (subnormal, not 0)",
        "LoRA: dB = s·dYᵀ·(x·Aᵀ), dA = s·(dY·B)ᵀ·x: finite differences agree to < 1e-6, the " +
        "library's backward to < 1e-4",
        "B = 0: |dA| = 0.0000, |dB| = 5.2713; after one step on B: |dA| = 1.5263",
        "RMSNorm: dx = g/r − x·Σ(g⊙x)/(n·r³): finite differences agree to < 1e-6, the library's backward to < 1e-4",
        "LayerNorm: dx = (g − mean(g) − x̂·mean(g⊙x̂))/σ: finite differences agree to < 1e-6, the " +
        "library's backward to < 1e-4",
        "attention: dV = Pᵀ·dO, dS = P⊙(dP − rowsum(P⊙dP)), dQ = s·dS·K, dK = s·dSᵀ·Q: finite differences agree to < " +
        "1e-6, the library's backward to < 1e-4",
        "RoPE: dx = R(−p·ω)·dy, the inverse rotation: finite differences agree to < 1e-6, the " +
        "library's backward to < 1e-4",
        "RoPE: q at 7 · k at 3 = 0.539998; q at 107 · k at 103 = 0.539998 (only m − n counts)")]
    [TestCase("exercises", "exercise 1.1 transpose: ok", "exercise 2.1 naive GEMM with four sums: ok",
        "exercise 3.1 backward of a ⊙ b: ok", "exercise 4.1 stable log softmax: ok",
        "exercise 4.2 three Adam steps by hand: ok",
        "exercise 5.1 rank-2 LoRA backward with GEMM calls: ok", "exercise 5.2 merging an adapter: ok",
        "exercise 6.1 the adapter's parameter count: ok",
        "exercise 6.2 the truncation error from the singular values: ok", "exercise 8.1 an atomic save: ok",
        "exercise 9.1 greedy decoding with the KV cache: ok", "exercise 9.2 RoPE on one vector: ok",
        "exercise 9.3 one NF4 block by hand: ok")]
    public void SamplesPrintWhatTheChaptersQuote(string sample, params string[] expected)
    {
        var output = new StringWriter { NewLine = "\n" };
        var culture = Thread.CurrentThread.CurrentCulture;
        Thread.CurrentThread.CurrentCulture = System.Globalization.CultureInfo.InvariantCulture;
        try { Program.Samples[sample](output); }
        finally { Thread.CurrentThread.CurrentCulture = culture; }
        foreach (string line in expected)
            Assert.That(output.ToString(), Does.Contain(line), $"sample '{sample}' output:\n{output}");
    }

    private static string[] Lines(string s) =>
        s.Replace("\r\n", "\n").Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0).ToArray();
}
