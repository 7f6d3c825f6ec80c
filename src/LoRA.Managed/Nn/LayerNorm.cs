using LoRA.Managed.Autograd;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Nn;

/// <summary>
/// <c>torch.nn.LayerNorm(C)</c> over the last dimension (Ba et al., 2016): <c>weight</c> starts at ones,
/// <c>bias</c> at zeros, eps 1e-5, biased variance, as PyTorch.
/// </summary>
public sealed class LayerNorm : Module
{
    /// <summary>Creates a layer norm over a last dimension of <paramref name="normalizedShape"/> features.</summary>
    public LayerNorm(int normalizedShape, float eps = 1e-5f)
    {
        if (normalizedShape <= 0)
            throw new ArgumentOutOfRangeException(nameof(normalizedShape), normalizedShape,
                "LayerNorm: the size must be positive.");
        if (!(eps > 0f)) throw new ArgumentOutOfRangeException(nameof(eps), eps, "LayerNorm: eps must be positive.");
        NormalizedShape = normalizedShape;
        Eps = eps;
        Weight = RegisterParameter("weight", new Parameter(normalizedShape));
        Weight.Data.Fill(1f);
        Bias = RegisterParameter("bias", new Parameter(normalizedShape));
    }

    /// <summary>Features in the normalised (last) dimension.</summary>
    public int NormalizedShape { get; }

    /// <summary>Added to the variance before the square root.</summary>
    public float Eps { get; }

    /// <summary>The elementwise gain, (C).</summary>
    public Parameter Weight { get; }

    /// <summary>The elementwise shift, (C).</summary>
    public Parameter Bias { get; }

    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => Functional.LayerNorm(input, Weight, Bias, Eps);

    /// <inheritdoc />
    public override string ToString() => $"LayerNorm(({NormalizedShape},), eps={Eps})";
}
