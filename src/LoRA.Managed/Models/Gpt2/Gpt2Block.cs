using LoRA.Managed.Autograd;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Models;

/// <summary>GPT-2's pre-norm block (<c>GPT2Block</c>): <c>x + attn(ln_1(x))</c>, then <c>x +
/// mlp(ln_2(x))</c>.</summary>
public sealed class Gpt2Block : Module
{
    /// <summary>Creates the block with zero weights (to be loaded).</summary>
    public Gpt2Block(int embed, int heads, int inner, float eps)
    {
        Ln1 = RegisterModule("ln_1", new LayerNorm(embed, eps));
        Attn = RegisterModule("attn", new Gpt2Attention(embed, heads));
        Ln2 = RegisterModule("ln_2", new LayerNorm(embed, eps));
        Mlp = RegisterModule("mlp", new Gpt2Mlp(embed, inner));
    }

    /// <summary>The first layer norm.</summary>
    public LayerNorm Ln1 { get; }

    /// <summary>The attention.</summary>
    public Gpt2Attention Attn { get; }

    /// <summary>The second layer norm.</summary>
    public LayerNorm Ln2 { get; }

    /// <summary>The MLP.</summary>
    public Gpt2Mlp Mlp { get; }

    /// <inheritdoc />
    public override Tensor Forward(Tensor input)
    {
        Tensor x = Functional.Add(input, Attn.Forward(Ln1.Forward(input)));
        return Functional.Add(x, Mlp.Forward(Ln2.Forward(x)));
    }

    internal Tensor ForwardCached(Tensor input, KvCache cache, int layer)
    {
        Tensor x = Functional.Add(input, Attn.ForwardCached(Ln1.Forward(input), cache, layer));
        return Functional.Add(x, Mlp.Forward(Ln2.Forward(x)));
    }
}
