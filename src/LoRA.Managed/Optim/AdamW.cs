using LoRA.Managed.Nn;

namespace LoRA.Managed.Optim;

/// <summary>
/// <c>torch.optim.AdamW</c>: Adam with decoupled weight decay (Loshchilov &amp; Hutter, 2019):
/// <c>θ ← θ·(1 − lr·λ)</c> before the Adam update, instead of adding λθ to the gradient. Default λ = 0.01.
/// Parameters listed in <c>noDecay</c> (biases and norms, as HF's Trainer does) are not decayed.
/// </summary>
public sealed class AdamW : Adam
{
    private readonly HashSet<Parameter> _noDecay;

    /// <summary>Creates the optimiser.</summary>
    public AdamW(IEnumerable<Parameter> parameters, double learningRate = 1e-3, double beta1 = 0.9,
        double beta2 = 0.999,
        double eps = 1e-8, double weightDecay = 0.01, IEnumerable<Parameter>? noDecay = null)
        : base(parameters, learningRate, beta1, beta2, eps, weightDecay)
    {
        _noDecay = new HashSet<Parameter>(noDecay ?? Array.Empty<Parameter>(), ReferenceEqualityComparer.Instance);
    }

    /// <inheritdoc />
    protected override bool Decoupled => true;

    /// <inheritdoc />
    protected override float DecayFor(Parameter p, float decay) => _noDecay.Contains(p) ? 1f : decay;
}
