using LoRA.Managed.Tensors;

using LoRA.Managed.Nn;

namespace LoRA.Managed.Models;

/// <summary>
/// The blog's classifier: <c>layers = Sequential(Flatten, Linear(784, 512), ReLU, Linear(512, 256), ReLU, Linear(256,
/// 10))</c>, so its <c>state_dict</c> names are <c>layers.1.*</c>, <c>layers.3.*</c>, <c>layers.5.*</c> as in PyTorch.
/// 535,818 parameters.
/// </summary>
public sealed class Mlp : Module
{
    /// <summary>Builds the MLP with layer widths <paramref name="sizes"/> (input first), ReLU between layers.</summary>
    public Mlp(TorchGenerator generator, params int[] sizes)
    {
        ArgumentNullException.ThrowIfNull(generator);
        if (sizes is null || sizes.Length < 2)
            throw new ArgumentException("Mlp: give at least an input and an output size.");
        var modules = new List<Module> { new Flatten() };
        for (int i = 0; i + 1 < sizes.Length; i++)
        {
            modules.Add(new Linear(sizes[i], sizes[i + 1], generator));
            if (i + 2 < sizes.Length) modules.Add(new ReLU());
        }
        Layers = RegisterModule("layers", new Sequential(modules.ToArray()));
    }

    /// <summary>The blog's 784→512→256→10 network.</summary>
    public static Mlp Blog(TorchGenerator generator) => new(generator, 784, 512, 256, 10);

    /// <summary>The layer chain.</summary>
    public Sequential Layers { get; }

    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => Layers.Forward(input);
}
