using LoRA.Managed.Autograd;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Models;

/// <summary>
/// GPT-2's body (<c>GPT2Model</c>, the <c>transformer</c> of <c>GPT2LMHeadModel</c>): token embedding <c>wte</c> plus
/// learned positions <c>wpe</c>, the blocks <c>h.0…</c>, and the final <c>ln_f</c>. Dropout is not applied (it is
/// identity at inference, and LoRA fine-tuning here trains without it, as with <c>model.eval()</c>).
/// </summary>
public sealed class Gpt2Model : Module
{
    private int[] _positions = [];
    private int[]? _idsShape;
    // The module at wte: the table itself, or an adapter wrapping it (the tied head keeps the table).
    private ITokenEmbedding _lookup;
    private ITokenEmbedding _positionLookup;

    /// <summary>Creates the body with zero weights (to be loaded).</summary>
    public Gpt2Model(Hf.HfConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        _lookup = RegisterModule("wte", Embedding.Empty(config.VocabSize, config.HiddenSize));
        _positionLookup = RegisterModule("wpe", Embedding.Empty(config.MaxPositions, config.HiddenSize));
        var blocks = new Module[config.Layers];
        for (int i = 0; i < blocks.Length; i++)
            blocks[i] = new Gpt2Block(config.HiddenSize, config.Heads, config.IntermediateSize, config.NormEps);
        H = RegisterModule("h", new Sequential(blocks));
        LnF = RegisterModule("ln_f", new LayerNorm(config.HiddenSize, config.NormEps));
    }

    /// <summary>Token embedding (V, C); also the tied head's weight.</summary>
    public Embedding Wte => _lookup.Table;

    /// <summary>Position embedding (positions, C).</summary>
    public Embedding Wpe => _positionLookup.Table;

    /// <summary>The blocks.</summary>
    public Sequential H { get; }

    /// <summary>The final layer norm.</summary>
    public LayerNorm LnF { get; }

    /// <summary>Not used: the ids are integers; call <see cref="CausalLm.Forward(ReadOnlySpan{int}, int, int)"/> on the
    /// model.</summary>
    /// <exception cref="InvalidOperationException">Always.</exception>
    public override Tensor Forward(Tensor input) =>
        throw new InvalidOperationException("Gpt2Model: run the whole model (CausalLm.Forward with token ids).");

    /// <summary>Ids (batch, time) at positions start.. → hidden states (batch, time, C) after ln_f.</summary>
    internal Tensor Run(ReadOnlySpan<int> ids, int batch, int time, int start, KvCache? cache, bool checkpoint = false)
    {
        if (_positions.Length != ids.Length || _idsShape is null || _idsShape[0] != batch || _idsShape[1] != time
            || _positions[0] != start)
        {
            var positions = new int[ids.Length];
            for (int i = 0; i < positions.Length; i++) positions[i] = start + i % time;
            _positions = positions;
            _idsShape = [batch, time];
        }
        Tensor x = Functional.Add(_lookup.Forward(ids, _idsShape), _positionLookup.Forward(_positions, _idsShape));
        for (int l = 0; l < H.Count; l++)
        {
            var block = (Gpt2Block)H[l];
            if (cache is null)
                x = checkpoint ? _checkpointed.Forward(l, H.Count, block, x) : block.Forward(x);
            else using (cache.BlockScratch(l)) x = block.ForwardCached(x, cache, l);
        }
        return LnF.Forward(x);
    }

    private readonly CheckpointedBlocks _checkpointed = new();

    /// <inheritdoc />
    protected override void OnChildReplaced(string name, Module module)
    {
        if (name is not ("wte" or "wpe")) return;
        // Refuse anything that cannot look ids up: ReplaceChild puts the old child back.
        if (module is not ITokenEmbedding lookup)
            throw new ArgumentException($"Gpt2Model: '{name}' must be an Embedding or wrap one, not a " +
                $"{module.GetType().Name}.");
        if (name == "wte") _lookup = lookup;
        else _positionLookup = lookup;
    }
}
