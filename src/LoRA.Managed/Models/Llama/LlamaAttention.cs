using LoRA.Managed.Autograd;
using LoRA.Managed.Kernels;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Models;

/// <summary>
/// Llama's attention (<c>LlamaAttention</c> in Hugging Face's <c>modeling_llama.py</c>): <c>q_proj</c> (C → H·D),
/// <c>k_proj</c> and <c>v_proj</c> (C → H_kv·D), rotary embedding of q and k, grouped-query causal attention
/// (<c>repeat_kv</c>), softmax of <c>q·kᵀ/√D</c>, and <c>o_proj</c> (H·D → C). The projections are children that
/// LoRA may replace.
/// </summary>
public sealed class LlamaAttention : Module
{
    private Module _q, _k, _v, _o;
    private readonly int _heads, _kvHeads, _headDim;
    private readonly RotaryEmbedding _rope;
    private AttentionShapes? _shapes;

    /// <summary>Creates the layer with zero weights (to be loaded); <paramref name="rope"/> is shared by every
    /// layer.</summary>
    public LlamaAttention(Hf.HfConfig config, RotaryEmbedding rope)
    {
        ArgumentNullException.ThrowIfNull(config);
        _rope = rope ?? throw new ArgumentNullException(nameof(rope));
        _heads = config.Heads;
        _kvHeads = config.KvHeads;
        _headDim = config.HeadDim;
        int c = config.HiddenSize;
        _q = RegisterModule("q_proj", Linear.Empty(c, _heads * _headDim, config.QkvBias));
        _k = RegisterModule("k_proj", Linear.Empty(c, _kvHeads * _headDim, config.QkvBias));
        _v = RegisterModule("v_proj", Linear.Empty(c, _kvHeads * _headDim, config.QkvBias));
        _o = RegisterModule("o_proj", Linear.Empty(_heads * _headDim, c, config.OutputBias));
    }

    /// <summary>x (B, T, C) → (B, T, C).</summary>
    public override Tensor Forward(Tensor input)
    {
        int b = input.Shape[0], t = input.Shape[1];
        AttentionShapes s = AttentionShapes.For(ref _shapes, b, t, _heads, _kvHeads, _headDim);
        _rope.Ensure(t);
        // RoPE on (B, T, H, D); the heads are then read and written in place in (B, T, H·D) and the key/value heads
        // shared without repeat_kv's copies (Functional.CausalHeadScores/Values): the bits of the permute path.
        Tensor q = Functional.Reshape(
            Functional.Rope(Functional.Reshape(_q.Forward(input), s.Heads), _rope.Cos, _rope.Sin), s.Merged);
        Tensor k = Functional.Reshape(
            Functional.Rope(Functional.Reshape(_k.Forward(input), s.KvHeads), _rope.Cos, _rope.Sin), s.KvMerged);
        Tensor v = _v.Forward(input);                                                            // (B, T, H_kv·D)
        Tensor att = Functional.CausalSoftmax(Functional.CausalHeadScores(q, k, _heads, _kvHeads),
            1f / MathF.Sqrt(_headDim), inPlace: true);   // the scores are read by nothing else
        return _o.Forward(Functional.CausalHeadValues(att, v, _kvHeads));                        // (B, T, H·D)
    }

    /// <summary>x (1, n, C) for n new tokens against layer <paramref name="layer"/> of the cache → (1, n, C).</summary>
    internal Tensor ForwardCached(Tensor x, KvCache cache, int layer)
    {
        int n = x.Shape[1], start = cache.Length;
        AttentionShapes s = AttentionShapes.For(ref _shapes, 1, n, _heads, _kvHeads, _headDim);
        _rope.Ensure(start + n);
        // (1, n, H, D)
        Tensor q = Functional.Rope(Functional.Reshape(_q.Forward(x), s.Heads), _rope.Cos, _rope.Sin, start);
        Tensor k = Functional.Rope(Functional.Reshape(_k.Forward(x), s.KvHeads), _rope.Cos, _rope.Sin, start);
        Tensor v = _v.Forward(x);
        cache.Write(layer, k.Data, v.Data, n);
        Tensor y = Tape.NewTensor(s.Merged);
        CachedAttentionKernel.Forward(q.Data, cache.Keys(layer), cache.Values(layer), y.Data, n, _heads, _kvHeads,
            _headDim,
            start, 1f / MathF.Sqrt(_headDim));
        return _o.Forward(y);
    }

    /// <inheritdoc />
    protected override void OnChildReplaced(string name, Module module)
    {
        switch (name)
        {
            case "q_proj": _q = module; break;
            case "k_proj": _k = module; break;
            case "v_proj": _v = module; break;
            default: _o = module; break;
        }
    }
}
