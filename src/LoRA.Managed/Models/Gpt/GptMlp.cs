using LoRA.Managed.Tensors;

using LoRA.Managed.Nn;

namespace LoRA.Managed.Models;

/// <summary>
/// The transformer's position-wise feed-forward network ("Attention Is All You Need" §3.3, GPT-2's MLP):
/// <c>dropout(fc2(gelu(fc1(x))))</c> with fc1: C → 4C and fc2: 4C → C. Children <c>fc1</c>, <c>act</c>, <c>fc2</c>,
/// <c>dropout</c>; the Linear children may be replaced (e.g. by LoRA layers) through <see cref="Module.ReplaceChild"/>.
/// </summary>
public sealed class GptMlp : Module
{
    private Module _fc1, _fc2, _act, _dropout;

    /// <summary>Creates the block for <paramref name="config"/>, drawing weights and dropout masks from
    /// <paramref name="generator"/>.</summary>
    public GptMlp(GptConfig config, TorchGenerator generator)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(generator);
        _fc1 = RegisterModule("fc1", new Linear(config.Embed, 4 * config.Embed, generator));
        _act = RegisterModule("act", new Gelu());
        _fc2 = RegisterModule("fc2", new Linear(4 * config.Embed, config.Embed, generator));
        _dropout = RegisterModule("dropout", new Dropout(config.Dropout, generator));
    }

    /// <summary>The expanding projection (a <see cref="Linear"/> unless replaced).</summary>
    public Module Fc1 => _fc1;

    /// <summary>The contracting projection (a <see cref="Linear"/> unless replaced).</summary>
    public Module Fc2 => _fc2;

    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => _dropout.Forward(_fc2.Forward(_act.Forward(_fc1.Forward(input))));

    /// <inheritdoc />
    protected override void OnChildReplaced(string name, Module module)
    {
        switch (name)
        {
            case "fc1": _fc1 = module; break;
            case "act": _act = module; break;
            case "fc2": _fc2 = module; break;
            default: _dropout = module; break;
        }
    }
}
