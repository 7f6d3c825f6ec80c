using LoRA.Managed.Autograd;
using LoRA.Managed.Tensors;

using LoRA.Managed.Nn;

namespace LoRA.Managed.Models;

/// <summary>
/// One pre-norm transformer block, as GPT-2 and nanoGPT's <c>Block</c>:
/// <c>x = x + attn(ln_1(x))</c>, then <c>x = x + mlp(ln_2(x))</c> (residual connections, He et al. 2016;
/// layer norm before each sub-layer, as GPT-2 moved it, Radford et al. 2019 §2.3). Children
/// <c>ln_1</c>, <c>attn</c>, <c>ln_2</c>, <c>mlp</c>; any may be replaced through <see cref="Module.ReplaceChild"/>.
/// </summary>
public sealed class GptBlock : Module
{
    private Module _ln1, _attn, _ln2, _mlp;

    /// <summary>Creates the block for <paramref name="config"/>, drawing from <paramref name="generator"/>.</summary>
    public GptBlock(GptConfig config, TorchGenerator generator)
    {
        ArgumentNullException.ThrowIfNull(config);
        _ln1 = RegisterModule("ln_1", new LayerNorm(config.Embed));
        _attn = RegisterModule("attn", new CausalSelfAttention(config, generator));
        _ln2 = RegisterModule("ln_2", new LayerNorm(config.Embed));
        _mlp = RegisterModule("mlp", new GptMlp(config, generator));
    }

    /// <summary>The norm before attention.</summary>
    public Module Ln1 => _ln1;

    /// <summary>The attention layer (a <see cref="CausalSelfAttention"/> unless replaced).</summary>
    public Module Attn => _attn;

    /// <summary>The norm before the feed-forward network.</summary>
    public Module Ln2 => _ln2;

    /// <summary>The feed-forward network (a <see cref="GptMlp"/> unless replaced).</summary>
    public Module Mlp => _mlp;

    /// <summary>Maps x (B, T, C) to (B, T, C).</summary>
    public override Tensor Forward(Tensor input)
    {
        Tensor x = Functional.Add(input, _attn.Forward(_ln1.Forward(input)));
        return Functional.Add(x, _mlp.Forward(_ln2.Forward(x)));
    }

    /// <inheritdoc />
    protected override void OnChildReplaced(string name, Module module)
    {
        switch (name)
        {
            case "ln_1": _ln1 = module; break;
            case "attn": _attn = module; break;
            case "ln_2": _ln2 = module; break;
            default: _mlp = module; break;
        }
    }
}
