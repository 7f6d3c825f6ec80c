using LoRA.Managed.Autograd;
using LoRA.Managed.Kernels;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Models;

/// <summary>
/// GPT-2's attention (<c>GPT2Attention</c> in Hugging Face's <c>modeling_gpt2.py</c>): the fused projection
/// <c>c_attn</c> (Conv1D, C → 3C, split into q, k, v), causal softmax of <c>q·kᵀ/√D</c> per head, and <c>c_proj</c>
/// (Conv1D, C → C). Both projections are children that LoRA may replace.
/// </summary>
public sealed class Gpt2Attention : Module
{
    private Module _cAttn, _cProj;
    private readonly int _heads, _embed, _headDim;

    /// <summary>Creates the layer with zero weights (to be loaded).</summary>
    public Gpt2Attention(int embed, int heads)
    {
        _embed = embed;
        _heads = heads;
        _headDim = embed / heads;
        _cAttn = RegisterModule("c_attn", Linear.Empty(embed, 3 * embed, bias: true, fanInFanOut: true));
        _cProj = RegisterModule("c_proj", Linear.Empty(embed, embed, bias: true, fanInFanOut: true));
    }

    /// <summary>x (B, T, C) → (B, T, C).</summary>
    public override Tensor Forward(Tensor input)
    {
        Tensor qkv = _cAttn.Forward(input);                                            // (B, T, 3C)
        Tensor q = Functional.Narrow(qkv, 0, _embed);                                  // (B, T, C) each
        Tensor k = Functional.Narrow(qkv, _embed, _embed);
        Tensor v = Functional.Narrow(qkv, 2 * _embed, _embed);
        // Heads read and written in place in (B, T, C): the bits of splitting them with a permute, without the copies.
        Tensor att = Functional.CausalSoftmax(Functional.CausalHeadScores(q, k, _heads),
            1f / MathF.Sqrt(_headDim), inPlace: true);   // the scores are read by nothing else
        return _cProj.Forward(Functional.CausalHeadValues(att, v, _heads));            // (B, T, C), heads merged
    }

    /// <summary>x (1, n, C) for n new tokens against layer <paramref name="layer"/> of the cache → (1, n, C).</summary>
    internal Tensor ForwardCached(Tensor x, KvCache cache, int layer)
    {
        int n = x.Shape[1];
        Tensor qkv = _cAttn.Forward(x);                                                // (1, n, 3C)
        Tensor q = Functional.Narrow(qkv, 0, _embed);
        cache.Write(layer, Functional.Narrow(qkv, _embed, _embed).Data,
            Functional.Narrow(qkv, 2 * _embed, _embed).Data, n);
        Tensor y = Tape.NewTensor(q.Shape);
        CachedAttentionKernel.Forward(q.Data, cache.Keys(layer), cache.Values(layer), y.Data, n, _heads, _heads,
            _headDim,
            cache.Length, 1f / MathF.Sqrt(_headDim));
        return _cProj.Forward(y);
    }

    /// <inheritdoc />
    protected override void OnChildReplaced(string name, Module module)
    {
        if (name == "c_attn") _cAttn = module; else _cProj = module;
    }
}
