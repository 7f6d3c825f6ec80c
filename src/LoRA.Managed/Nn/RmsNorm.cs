using LoRA.Managed.Autograd;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Nn;

/// <summary>
/// Root-mean-square normalisation over the last dimension (Hugging Face's <c>LlamaRMSNorm</c>):
/// <c>y = weight ⊙ x / √(mean(x²) + ε)</c>; <c>weight</c> starts at ones.
/// </summary>
public sealed class RmsNorm : Module
{
    /// <summary>Creates the layer over a last dimension of <paramref name="size"/> features.</summary>
    public RmsNorm(int size, float eps = 1e-6f)
    {
        if (size <= 0) throw new ArgumentOutOfRangeException(nameof(size), size, "RmsNorm: the size must be positive.");
        if (!(eps > 0f)) throw new ArgumentOutOfRangeException(nameof(eps), eps, "RmsNorm: eps must be positive.");
        Size = size;
        Eps = eps;
        Weight = RegisterParameter("weight", new Parameter(size));
        Weight.Data.Fill(1f);
    }

    /// <summary>Features in the normalised (last) dimension.</summary>
    public int Size { get; }

    /// <summary>Added to the mean square before the square root.</summary>
    public float Eps { get; }

    /// <summary>The elementwise gain, (C).</summary>
    public Parameter Weight { get; }

    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => Functional.RmsNorm(input, Weight, Eps);

    /// <inheritdoc />
    public override string ToString() => $"RmsNorm(({Size},), eps={Eps})";
}
