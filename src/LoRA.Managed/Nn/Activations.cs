using LoRA.Managed.Autograd;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Nn;

/// <summary><c>nn.ReLU</c>: <c>max(x, 0)</c>.</summary>
public sealed class ReLU : Module
{
    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => Functional.Relu(input);
}

/// <summary><c>nn.Flatten</c>: keeps dimension 0 and flattens the rest, so (B, 28, 28) becomes (B, 784).</summary>
public sealed class Flatten : Module
{
    /// <inheritdoc />
    public override Tensor Forward(Tensor input) =>
        input.Rank == 2 ? input : Functional.Reshape(input, input.Shape[0], input.Count / Math.Max(1, input.Shape[0]));
}

/// <summary><c>nn.Dropout</c>: inverted dropout in training mode, identity in evaluation mode.</summary>
public sealed class Dropout : Module
{
    private readonly TorchGenerator _generator;

    /// <summary>Creates a dropout layer drawing its masks from <paramref name="generator"/>.</summary>
    public Dropout(float p, TorchGenerator generator)
    {
        if (!(p >= 0f && p < 1f)) throw new ArgumentOutOfRangeException(nameof(p), p, "Dropout: p must be in [0, 1).");
        P = p;
        _generator = generator ?? throw new ArgumentNullException(nameof(generator));
    }

    /// <summary>Probability of zeroing an element.</summary>
    public float P { get; }

    /// <inheritdoc />
    protected override void AddOwnGenerators(List<TorchGenerator> into) => into.Add(_generator);

    /// <inheritdoc />
    public override Tensor Forward(Tensor input) =>
        Training && P > 0f ? Functional.Dropout(input, P, _generator) : input;
}
