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
    private AttentionShapes? _shapes;

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
        int b = input.Shape[0], t = input.Shape[1];
        AttentionShapes s = AttentionShapes.For(ref _shapes, b, t, _heads, _heads, _headDim);
        Tensor qkv = _cAttn.Forward(input);                                            // (B, T, 3C)
        Tensor q = Heads(Functional.Narrow(qkv, 0, _embed), s);                        // (B, H, T, D)
        Tensor k = Heads(Functional.Narrow(qkv, _embed, _embed), s);
        Tensor v = Heads(Functional.Narrow(qkv, 2 * _embed, _embed), s);
        Tensor att = Functional.CausalSoftmax(Functional.CausalBatchedMatMul(q, k, transposeB: true),
            1f / MathF.Sqrt(_headDim), inPlace: true);   // the scores are read by nothing else
        Tensor y = Functional.CausalBatchedMatMul(att, v);                             // (B, H, T, D)
        y = Functional.Reshape(Functional.Permute(y, AttentionShapes.SwapTimeAndHeads), s.Merged);
        return _cProj.Forward(y);
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

    private static Tensor Heads(Tensor x, AttentionShapes s) =>
        Functional.Permute(Functional.Reshape(x, s.Heads), AttentionShapes.SwapTimeAndHeads);

    /// <inheritdoc />
    protected override void OnChildReplaced(string name, Module module)
    {
        if (name == "c_attn") _cAttn = module; else _cProj = module;
    }
}
