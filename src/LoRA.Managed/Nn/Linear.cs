using LoRA.Managed.Autograd;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Nn;

/// <summary>
/// A fully connected layer, <c>y = x·Wᵀ + b</c>, as <c>torch.nn.Linear</c>: W is (out, in), b is (out).
/// Initialised as PyTorch does: W by Kaiming-uniform with a = √5, which is uniform in ±1/√in, then b
/// uniform in ±1/√in, drawn in that order, so a <see cref="TorchGenerator"/> seeded like
/// <c>torch.manual_seed</c> reproduces PyTorch's initial weights.
/// </summary>
public sealed class Linear : Module
{
    /// <summary>Creates a layer with PyTorch's default initialisation from <paramref name="generator"/>.</summary>
    public Linear(int inFeatures, int outFeatures, TorchGenerator generator, bool bias = true)
    {
        ArgumentNullException.ThrowIfNull(generator);
        if (inFeatures <= 0 || outFeatures <= 0)
            throw new ArgumentOutOfRangeException(nameof(inFeatures), $"Linear: features must be positive, got in={inFeatures}, out={outFeatures}.");
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        Weight = RegisterParameter("weight", new Parameter(outFeatures, inFeatures));
        float bound = 1f / MathF.Sqrt(inFeatures);
        generator.FillUniform(Weight.Data, -bound, bound);
        if (bias)
        {
            Bias = RegisterParameter("bias", new Parameter(outFeatures));
            generator.FillUniform(Bias.Data, -bound, bound);
        }
    }

    /// <summary>Input features.</summary>
    public int InFeatures { get; }

    /// <summary>Output features.</summary>
    public int OutFeatures { get; }

    /// <summary>W, (out, in).</summary>
    public Parameter Weight { get; }

    /// <summary>b, (out), or null without bias.</summary>
    public Parameter? Bias { get; }

    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => Functional.Linear(input, Weight, Bias);

    /// <inheritdoc />
    public override string ToString() => $"Linear(in_features={InFeatures}, out_features={OutFeatures}, bias={Bias is not null})";
}
