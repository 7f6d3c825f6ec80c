using LoRA.Managed.Kernels;
using LoRA.Managed.Nn;

namespace LoRA.Managed.Optim;

/// <summary>
/// <c>torch.optim.Adam</c>: β₁ 0.9, β₂ 0.999, ε 1e-8 by default, bias-corrected, optional L2 weight
/// decay added to the gradient. All parameters are updated in one fused SIMD pass split over the threads
/// (<see cref="AdamUpdate"/>).
/// </summary>
public class Adam : Optimizer
{
    private readonly float[][] _m, _v;
    private readonly AdamUpdate.Tensors[] _batch;

    /// <summary>Creates the optimiser.</summary>
    public Adam(IEnumerable<Parameter> parameters, double learningRate = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
        double eps = 1e-8, double weightDecay = 0)
        : base(parameters, learningRate)
    {
        if (!(beta1 >= 0 && beta1 < 1))
            throw new ArgumentOutOfRangeException(nameof(beta1), beta1, "Adam: beta1 must be in [0, 1).");
        if (!(beta2 >= 0 && beta2 < 1))
            throw new ArgumentOutOfRangeException(nameof(beta2), beta2, "Adam: beta2 must be in [0, 1).");
        if (!(eps >= 0)) throw new ArgumentOutOfRangeException(nameof(eps), eps, "Adam: eps must be ≥ 0.");
        if (!(weightDecay >= 0))
            throw new ArgumentOutOfRangeException(nameof(weightDecay), weightDecay, "Adam: weight decay must be ≥ 0.");
        Beta1 = beta1; Beta2 = beta2; Eps = eps; WeightDecay = weightDecay;
        _m = Parameters.Select(p => new float[p.Count]).ToArray();
        _v = Parameters.Select(p => new float[p.Count]).ToArray();
        _batch = new AdamUpdate.Tensors[Parameters.Count];
    }

    /// <summary>β₁.</summary>
    public double Beta1 { get; }
    /// <summary>β₂.</summary>
    public double Beta2 { get; }
    /// <summary>ε.</summary>
    public double Eps { get; }
    /// <summary>λ.</summary>
    public double WeightDecay { get; }

    /// <summary>Whether weight decay is decoupled from the gradient (AdamW) rather than added to it (Adam).</summary>
    protected virtual bool Decoupled => false;

    /// <summary>First-moment buffers, one per parameter (exposed for checkpoints).</summary>
    public IReadOnlyList<float[]> FirstMoments => _m;

    /// <summary>Second-moment buffers, one per parameter (exposed for checkpoints).</summary>
    public IReadOnlyList<float[]> SecondMoments => _v;

    /// <inheritdoc />
    protected override void Update(bool zeroGrad)
    {
        StepCount++;
        int t = StepCount;
        // Bias corrections as PyTorch computes them: step_size = lr / (1 − β₁ᵗ), denom = √v / √(1 − β₂ᵗ) + ε.
        double bias1 = 1 - Math.Pow(Beta1, t);
        double bias2Sqrt = Math.Sqrt(1 - Math.Pow(Beta2, t));
        float stepSize = (float)(LearningRate / bias1);
        float l2 = Decoupled ? 0f : (float)WeightDecay;
        float decay = Decoupled ? (float)(1 - LearningRate * WeightDecay) : 1f;
        int count = 0;
        for (int i = 0; i < Parameters.Count; i++)
        {
            Parameter p = Parameters[i];
            if (!Active(p)) continue;
            _batch[count++] = new AdamUpdate.Tensors(p.Array, p.EnsureGrad(), _m[i], _v[i], DecayFor(p, decay));
            // Zeroing only marks the gradient (Tensor.ZeroGrad): its values stay in the array the update reads below,
            // and the next backward's first write overwrites them.
            if (zeroGrad) p.ZeroGrad();
        }
        // All parameters in one pass split over the threads (AdamUpdate.StepMany), as torch's foreach Adam.
        AdamUpdate.StepMany(_batch, count, stepSize, (float)(1 - Beta1), (float)Beta2, (float)(1 - Beta2),
            (float)bias2Sqrt, (float)Eps, l2);
        System.Array.Clear(_batch, 0, count); // no references kept to gradients between steps
    }

    /// <summary>The decoupled decay factor for one parameter (AdamW may exempt some).</summary>
    protected virtual float DecayFor(Parameter p, float decay) => decay;
}
