using LoRA.Managed.Autograd;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Models;

/// <summary>
/// Llama's block (<c>LlamaDecoderLayer</c>): <c>x + self_attn(input_layernorm(x))</c>, then
/// <c>x + mlp(post_attention_layernorm(x))</c>, both norms RMSNorm.
/// </summary>
public sealed class LlamaDecoderLayer : Module
{
    /// <summary>Creates the block with zero weights (to be loaded).</summary>
    public LlamaDecoderLayer(Hf.HfConfig config, RotaryEmbedding rope)
    {
        ArgumentNullException.ThrowIfNull(config);
        InputLayernorm = RegisterModule("input_layernorm", new RmsNorm(config.HiddenSize, config.NormEps));
        SelfAttn = RegisterModule("self_attn", new LlamaAttention(config, rope));
        PostAttentionLayernorm = RegisterModule("post_attention_layernorm",
            new RmsNorm(config.HiddenSize, config.NormEps));
        Mlp = RegisterModule("mlp", new LlamaMlp(config.HiddenSize, config.IntermediateSize, config.MlpBias));
    }

    /// <summary>The norm before attention.</summary>
    public RmsNorm InputLayernorm { get; }

    /// <summary>The attention.</summary>
    public LlamaAttention SelfAttn { get; }

    /// <summary>The norm before the MLP.</summary>
    public RmsNorm PostAttentionLayernorm { get; }

    /// <summary>The MLP.</summary>
    public LlamaMlp Mlp { get; }

    /// <inheritdoc />
    public override Tensor Forward(Tensor input)
    {
        Tensor x = Functional.Add(input, SelfAttn.Forward(InputLayernorm.Forward(input)));
        return Functional.Add(x, Mlp.Forward(PostAttentionLayernorm.Forward(x)));
    }

    internal Tensor ForwardCached(Tensor input, KvCache cache, int layer)
    {
        Tensor x = Functional.Add(input, SelfAttn.ForwardCached(InputLayernorm.Forward(input), cache, layer));
        return Functional.Add(x, Mlp.Forward(PostAttentionLayernorm.Forward(x)));
    }
}
