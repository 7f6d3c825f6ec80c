using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Models;

/// <summary>
/// Llama's body (<c>LlamaModel</c>, the <c>model</c> of <c>LlamaForCausalLM</c>): <c>embed_tokens</c>, the blocks
/// <c>layers.0…</c> sharing one <see cref="RotaryEmbedding"/>, and the final RMSNorm <c>norm</c>.
/// </summary>
public sealed class LlamaModel : Module
{
    private int[]? _idsShape;
    // The module at embed_tokens: the table itself, or an adapter wrapping it (the head keeps the table).
    private ITokenEmbedding _lookup;

    /// <summary>Creates the body with zero weights (to be loaded).</summary>
    public LlamaModel(Hf.HfConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        Rope = new RotaryEmbedding(config.HeadDim, config.RopeTheta, config.RopeScaling);
        _lookup = RegisterModule("embed_tokens", Embedding.Empty(config.VocabSize, config.HiddenSize));
        var layers = new Module[config.Layers];
        for (int i = 0; i < layers.Length; i++) layers[i] = new LlamaDecoderLayer(config, Rope);
        Layers = RegisterModule("layers", new Sequential(layers));
        Norm = RegisterModule("norm", new RmsNorm(config.HiddenSize, config.NormEps));
    }

    /// <summary>The rotary tables every attention layer reads.</summary>
    public RotaryEmbedding Rope { get; }

    /// <summary>Token embedding (V, C); also the head's weight when tied.</summary>
    public Embedding EmbedTokens => _lookup.Table;

    /// <summary>The blocks.</summary>
    public Sequential Layers { get; }

    /// <summary>The final norm.</summary>
    public RmsNorm Norm { get; }

    /// <summary>Not used: the ids are integers; call <see cref="CausalLm.Forward(ReadOnlySpan{int}, int, int)"/> on the
    /// model.</summary>
    /// <exception cref="InvalidOperationException">Always.</exception>
    public override Tensor Forward(Tensor input) =>
        throw new InvalidOperationException("LlamaModel: run the whole model (CausalLm.Forward with token ids).");

    /// <summary>Ids (batch, time) → hidden states (batch, time, C) after the final norm; with a cache, against
    /// it.</summary>
    internal Tensor Run(ReadOnlySpan<int> ids, int batch, int time, KvCache? cache, bool checkpoint = false)
    {
        if (_idsShape is null || _idsShape[0] != batch || _idsShape[1] != time) _idsShape = [batch, time];
        Tensor x = _lookup.Forward(ids, _idsShape);
        for (int l = 0; l < Layers.Count; l++)
        {
            var layer = (LlamaDecoderLayer)Layers[l];
            if (cache is null)
                x = checkpoint ? _checkpointed.Forward(l, Layers.Count, layer, x) : layer.Forward(x);
            else using (cache.BlockScratch(l)) x = layer.ForwardCached(x, cache, l);
        }
        return Norm.Forward(x);
    }

    private readonly CheckpointedBlocks _checkpointed = new();

    /// <inheritdoc />
    protected override void OnChildReplaced(string name, Module module)
    {
        if (name != "embed_tokens") return;
        // Refuse anything that cannot look tokens up: ReplaceChild puts the old child back.
        if (module is not ITokenEmbedding lookup)
            throw new ArgumentException($"{GetType().Name}: 'embed_tokens' must be an Embedding or wrap one, not a " +
                $"{module.GetType().Name}.");
        _lookup = lookup;
    }
}
