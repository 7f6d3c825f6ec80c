using MathNet.Numerics.LinearAlgebra;

namespace LoRA.Managed.Lora;

/// <summary>
/// PEFT's <c>add_weighted_adapter</c> (<c>peft/tuners/lora/model.py</c>) for <c>linear</c>, <c>cat</c> and
/// <c>svd</c>. With wᵢ the caller's weights and sᵢ each adapter's scale on a layer:
/// <list type="bullet">
/// <item><c>linear</c>: <c>A = Σ sign(wᵢsᵢ)·√|wᵢsᵢ|·Aᵢ</c>, <c>B = Σ √|wᵢsᵢ|·Bᵢ</c> (equal ranks only).</item>
/// <item><c>cat</c>: <c>A = [w₁s₁A₁; w₂s₂A₂; …]</c> stacked by rows, <c>B = [B₁ B₂ …]</c> by columns (zero rows and
/// columns pad a layer that lacks an adapter), so <c>B·A = Σ wᵢsᵢBᵢAᵢ</c>.</item>
/// <item><c>svd</c>: <c>ΔW = Σ wᵢsᵢ·ΔWᵢ</c> with <c>ΔWᵢ = sᵢBᵢAᵢ</c>, so each scale counts twice, as PEFT's code
/// (<c>weight * target.scaling[adapter]</c> times <c>get_delta_weight</c>, which is already scaled); then
/// <c>U, S, Vh = svd(ΔW)</c>, <c>B = U_r·diag(S_r)</c>, <c>A = Vh_r</c>, optionally clamped to the
/// <c>svd_clamp</c> quantile of their entries.</item>
/// </list>
/// Embeddings (<see cref="LoraEmbedding"/>) combine by the same three rules with A = <c>lora_embedding_A</c> (r×V)
/// and B = <c>lora_embedding_B</c> (D×r), as PEFT's code does (for svd, ΔW = s·B·A, the transpose of the table's
/// update). DoRA adapters are refused: PEFT combines their A and B and gives the new adapter a fresh magnitude, so
/// the trained magnitudes would be lost without a word.
/// The new adapter's configuration is the first adapter's with <c>r = lora_alpha = new rank</c> (so its scale is 1
/// under α/r, as PEFT writes it), the union of the target modules, no rank or alpha patterns, the default
/// initialisation and no modules to save. Everything is computed in double and checked before the model changes.
/// </summary>
public static class AdapterCombination
{
    internal static void Add(PeftModel model, IReadOnlyList<string> adapters, IReadOnlyList<double> weights,
        string adapterName, CombinationType type, int? svdRank, double? svdClamp, Tensors.TorchGenerator? generator)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(adapters);
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentException.ThrowIfNullOrEmpty(adapterName);
        const string who = "AddWeightedAdapter";
        if (adapters.Count == 0) throw new ArgumentException($"{who}: no adapters to combine.");
        if (weights.Count != adapters.Count)
            throw new ArgumentException(
                $"{who}: {adapters.Count} adapters but {weights.Count} weights; give one weight per adapter.");
        foreach (string a in adapters)
            if (!model.Adapters.ContainsKey(a))
                throw new ArgumentException(
                    $"{who}: no adapter '{a}'; adapters: {string.Join(", ", model.Adapters.Keys)}.");
        if (adapters.Distinct(StringComparer.Ordinal).Count() != adapters.Count)
            throw new ArgumentException($"{who}: an adapter is named twice in [{string.Join(", ", adapters)}].");
        if (adapters.FirstOrDefault(a => model.Adapters[a].UseDora) is { } dora)
            throw new ArgumentException(DoraRefusal(dora));
        if (model.Adapters.ContainsKey(adapterName))
            throw new ArgumentException($"{who}: adapter '{adapterName}' already exists.");
        foreach (double w in weights)
            if (!double.IsFinite(w)) throw new ArgumentException($"{who}: weight {w} is not finite.");
        if (svdClamp is double q && !(q >= 0 && q <= 1))
            throw new ArgumentException($"{who}: svd_clamp must be a quantile in [0, 1], got {q}.");
        if (adapters.Count == 1) type = CombinationType.Linear;   // PEFT: one adapter can only be scaled

        // PEFT sizes the new adapter with the largest rank each config may give a module.
        var configs = adapters.Select(a => model.Adapters[a]).ToList();
        int[] ranks = configs.Select(c => c.MaxRank).ToArray();
        string listed = string.Join(", ", adapters.Select((a, i) => $"'{a}' (r={ranks[i]})"));
        int newRank = type switch
        {
            CombinationType.Linear => ranks.Distinct().Count() == 1 ? ranks[0] : throw new ArgumentException(
                $"{who}: linear combination needs adapters of one rank, but {listed}; use cat or svd."),
            CombinationType.Cat => ranks.Sum(),
            CombinationType.Svd => svdRank ?? ranks.Max(),
            _ => throw new ArgumentOutOfRangeException(nameof(type), type, $"{who}: unknown combination type."),
        };
        if (newRank < 1) throw new ArgumentException($"{who}: svd_rank must be at least 1, got {newRank}.");

        var config = configs[0] with
        {
            Rank = newRank, Alpha = newRank,
            // PEFT: lists are united; regular expressions are joined as alternatives; a mix is refused.
            TargetModules = configs.All(c => c.TargetModulesRegex is null)
                ? configs.SelectMany(c => c.TargetModules).Distinct(StringComparer.Ordinal).ToList()
                : configs.All(c => c.TargetModulesRegex is not null) ? []
                : throw new ArgumentException($"{who}: the adapters give target_modules in different forms (a list " +
                    "and a regular expression); PEFT refuses to combine them too."),
            TargetModulesRegex = configs.All(c => c.TargetModulesRegex is not null)
                ? string.Join("|", configs.Select(c => $"({c.TargetModulesRegex})")) : null,
            RankPattern = [], AlphaPattern = [], Init = LoraInit.Default, ModulesToSave = [],
        };
        InjectionPlan plan;
        try { plan = InjectionPlan.Create(model.BaseModel, config, adapterName); }
        catch (ArgumentException ex)
        {
            throw new ArgumentException($"{who}: the combined adapter does not fit: {ex.Message}", ex);
        }

        // Every factor first, so a refusal leaves the model as it was.
        var factors = new List<(string Name, Matrix<double> A, Matrix<double> B)>();
        foreach (var (name, module) in plan.Targets)
        {
            List<Term> present = Terms(module, adapters, weights);
            if (present.Count == 0)
                throw new ArgumentException($"{who}: '{name}' is a target of the combined adapter but carries none "
                    + $"of [{string.Join(", ", adapters)}].");
            var (a, b) = type switch
            {
                CombinationType.Linear => Linear(present, newRank, name),
                CombinationType.Cat => Cat(present, newRank),
                _ => Svd(present, newRank, svdClamp),
            };
            factors.Add((name, a, b));
        }

        model.AddAdapter(adapterName, config, generator ?? new Tensors.TorchGenerator(0));
        var layers = model.AdaptedLayers().ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal);
        foreach (var (name, a, b) in factors)
        {
            var (ta, tb) = layers[name].Factors(adapterName);
            LowRank.CopyTo(a, ta.Data);
            LowRank.CopyTo(b, tb.Data);
        }
    }

    /// <summary>The one-line refusal of a DoRA adapter (the CLI gives the same before loading anything).</summary>
    internal static string DoraRefusal(string adapter) =>
        $"AddWeightedAdapter: adapter '{adapter}' uses DoRA, whose magnitude vector has no weighted combination "
        + "(PEFT's add_weighted_adapter combines A and B only and silently drops the trained magnitudes); merge it "
        + "with MergeAndUnload instead, or combine plain LoRA adapters.";

    /// <summary>The adapters among <paramref name="adapters"/> that <paramref name="module"/> carries, with their
    /// factors: lora_A/lora_B of a <see cref="LoraLinear"/> (r×in, out×r) or lora_embedding_A/B of a
    /// <see cref="LoraEmbedding"/> (r×V, D×r), which PEFT combines by the same rules.</summary>
    private static List<Term> Terms(Nn.Module module, IReadOnlyList<string> adapters, IReadOnlyList<double> weights)
    {
        var terms = new List<Term>();
        for (int i = 0; i < adapters.Count; i++)
        {
            string name = adapters[i];
            if (module is not LoraLayer layer || !layer.Adapters.Contains(name)) continue;
            var (a, b) = layer.Factors(name);
            terms.Add(new Term(name, weights[i], layer.Scale(name), LowRank.ToMatrix(a), LowRank.ToMatrix(b)));
        }
        return terms;
    }

    private static (Matrix<double> A, Matrix<double> B) Linear(IReadOnlyList<Term> present, int rank, string module)
    {
        var a = Matrix<double>.Build.Dense(rank, present[0].A.ColumnCount);
        var b = Matrix<double>.Build.Dense(present[0].B.RowCount, rank);
        foreach (var t in present)
        {
            if (t.A.RowCount != rank)
                throw new ArgumentException("AddWeightedAdapter: linear combination needs one rank, but "
                    + $"'{module}' has rank {t.A.RowCount} for '{t.Name}' (the combined rank is {rank}).");
            // PEFT: the square root of |w·s| on both factors, the sign on A only, so B·A carries w·s once.
            double ws = t.Weight * t.Scale, root = Math.Sqrt(Math.Abs(ws));
            a += (ws >= 0 ? root : -root) * t.A;
            b += root * t.B;
        }
        return (a, b);
    }

    private static (Matrix<double> A, Matrix<double> B) Cat(IReadOnlyList<Term> present, int rank)
    {
        var a = Matrix<double>.Build.Dense(rank, present[0].A.ColumnCount);
        var b = Matrix<double>.Build.Dense(present[0].B.RowCount, rank);
        int row = 0;
        foreach (var t in present)
        {
            a.SetSubMatrix(row, 0, t.A * (t.Weight * t.Scale));
            b.SetSubMatrix(0, row, t.B);
            row += t.A.RowCount;
        }
        return (a, b);
    }

    private static (Matrix<double> A, Matrix<double> B) Svd(IReadOnlyList<Term> present, int rank, double? clamp)
    {
        // For an embedding PEFT's get_delta_weight is (B·A)ᵀ·s, which it transposes back (is_embedding): B·A
        // here too.
        int outF = present[0].B.RowCount, inF = present[0].A.ColumnCount;
        var delta = Matrix<double>.Build.Dense(outF, inF);
        foreach (var t in present) delta += (t.Weight * t.Scale * t.Scale) * (t.B * t.A);
        var svd = delta.Svd(computeVectors: true);
        var b = svd.U.SubMatrix(0, outF, 0, rank)
            * Matrix<double>.Build.DiagonalOfDiagonalVector(svd.S.SubVector(0, rank));
        var a = svd.VT.SubMatrix(0, rank, 0, inF);
        if (clamp is double q)
        {
            // torch.quantile over U·S and Vh together, linear interpolation between order statistics.
            double hi = Quantile(b.Enumerate().Concat(a.Enumerate()).ToArray(), q);
            b.MapInplace(v => Math.Clamp(v, -hi, hi));
            a.MapInplace(v => Math.Clamp(v, -hi, hi));
        }
        return (a, b);
    }

    /// <summary>An adapter present on a layer: the caller's weight, the layer's scale and the factors.</summary>
    private readonly record struct Term(string Name, double Weight, double Scale, Matrix<double> A, Matrix<double> B);

    /// <summary>torch.quantile's default ("linear"): the value at position q·(n−1) of the sorted entries.</summary>
    internal static double Quantile(double[] values, double q)
    {
        Array.Sort(values);
        double pos = q * (values.Length - 1);
        int lo = (int)Math.Floor(pos), hi = Math.Min(lo + 1, values.Length - 1);
        return values[lo] + (pos - lo) * (values[hi] - values[lo]);
    }
}
