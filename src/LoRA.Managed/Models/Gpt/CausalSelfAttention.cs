using LoRA.Managed.Autograd;
using LoRA.Managed.Tensors;

using LoRA.Managed.Nn;

namespace LoRA.Managed.Models;

/// <summary>
/// Multi-head causal self-attention ("Attention Is All You Need", Vaswani et al. 2017, §3.2.2):
/// <c>headᵢ = softmax(QᵢKᵢᵀ/√d_k + causal mask)·Vᵢ</c>, <c>y = o_proj(concat(head₁…head_h))</c>.
/// Q, K and V come from SEPARATE children <c>q_proj</c>, <c>k_proj</c>, <c>v_proj</c> (as in Llama/PEFT naming, rather
/// than GPT-2's fused <c>c_attn</c>) so LoRA's <c>target_modules = ["q_proj", "k_proj", "v_proj"]</c> can adapt each
/// one; replacing a child through <see cref="Module.ReplaceChild"/> takes effect in <see cref="Forward"/>.
/// </summary>
public sealed class CausalSelfAttention : Module
{
    private Module _q, _k, _v, _o, _attnDropout, _residDropout;

    /// <summary>Creates the layer for <paramref name="config"/>, drawing weights and dropout masks from
    /// <paramref name="generator"/>.</summary>
    public CausalSelfAttention(GptConfig config, TorchGenerator generator)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(generator);
        config.Validate();
        Heads = config.Heads;
        Embed = config.Embed;
        _q = RegisterModule("q_proj", new Linear(Embed, Embed, generator));
        _k = RegisterModule("k_proj", new Linear(Embed, Embed, generator));
        _v = RegisterModule("v_proj", new Linear(Embed, Embed, generator));
        _o = RegisterModule("o_proj", new Linear(Embed, Embed, generator));
        _attnDropout = RegisterModule("attn_dropout", new Dropout(config.Dropout, generator));
        _residDropout = RegisterModule("resid_dropout", new Dropout(config.Dropout, generator));
    }

    /// <summary>Number of heads.</summary>
    public int Heads { get; }

    /// <summary>Width of the input and output (C).</summary>
    public int Embed { get; }

    /// <summary>The query projection (a <see cref="Linear"/> unless replaced).</summary>
    public Module QProj => _q;

    /// <summary>The key projection (a <see cref="Linear"/> unless replaced).</summary>
    public Module KProj => _k;

    /// <summary>The value projection (a <see cref="Linear"/> unless replaced).</summary>
    public Module VProj => _v;

    /// <summary>The output projection (a <see cref="Linear"/> unless replaced).</summary>
    public Module OProj => _o;

    /// <summary>Attends over x (B, T, C), each position to itself and earlier ones; returns (B, T, C).</summary>
    /// <exception cref="ArgumentException">x is not (B, T, C) with this layer's C.</exception>
    public override Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.Rank != 3 || input.Shape[2] != Embed)
            throw new ArgumentException($"CausalSelfAttention: expected input (B, T, {Embed}), got " +
                $"{Shapes.Format(input.Shape)}.");
        int hs = Embed / Heads;
        // Heads are read and written in place in the (B, T, C) projections (Functional.CausalHeadScores/Values), with
        // no (B, nh, T, hs) copies: the same bits as splitting them with a permute.
        Tensor q = _q.Forward(input), k = _k.Forward(input), v = _v.Forward(input);   // (B, T, C) each
        Tensor att = Functional.CausalHeadScores(q, k, Heads);                        // (B, nh, T, T) = Q·Kᵀ per head
        att = Functional.CausalSoftmax(att, 1f / MathF.Sqrt(hs), inPlace: true);     // softmax(Q·Kᵀ/√hs + mask)
        att = _attnDropout.Forward(att);
        Tensor y = Functional.CausalHeadValues(att, v, Heads);                        // (B, T, C), heads merged
        return _residDropout.Forward(_o.Forward(y));
    }

    /// <inheritdoc />
    protected override void OnChildReplaced(string name, Module module)
    {
        switch (name)
        {
            case "q_proj": _q = module; break;
            case "k_proj": _k = module; break;
            case "v_proj": _v = module; break;
            case "o_proj": _o = module; break;
            case "attn_dropout": _attnDropout = module; break;
            default: _residDropout = module; break;
        }
    }
}
