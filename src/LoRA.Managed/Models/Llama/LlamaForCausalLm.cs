using LoRA.Managed.Autograd;
using LoRA.Managed.Models.Hf;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Models;

/// <summary>
/// The Llama family as Hugging Face's <c>LlamaForCausalLM</c> (also <c>Qwen2ForCausalLM</c> and
/// <c>MistralForCausalLM</c>, which differ only in config): the body <c>model</c> (<see cref="LlamaModel"/>) and
/// <c>lm_head</c> (C → V, no bias), which is absent when <c>tie_word_embeddings</c> makes the head reuse
/// <c>model.embed_tokens.weight</c>.
/// </summary>
public sealed class LlamaForCausalLm : CausalLm
{
    private Module? _lmHead;
    private int[]? _rowsShape;

    /// <summary>Creates the model with zero weights (to be loaded, see <see cref="HfModel.Load(string)"/>).</summary>
    /// <exception cref="ArgumentException">The config is not of the Llama family.</exception>
    public LlamaForCausalLm(HfConfig config) : base(config)
    {
        if (config.Architecture != HfArchitecture.Llama)
            throw new ArgumentException($"LlamaForCausalLm: model_type is {config.ModelType}, not " +
                "of the Llama family.");
        Model = RegisterModule("model", new LlamaModel(config));
        if (!config.TieWordEmbeddings)
            _lmHead = RegisterModule("lm_head", Linear.Empty(config.HiddenSize, config.VocabSize, bias: false));
    }

    /// <summary>The body.</summary>
    public LlamaModel Model { get; }

    /// <summary>The head (a <see cref="Linear"/> unless replaced), or null when tied to the embedding.</summary>
    public Module? LmHead => _lmHead;

    /// <inheritdoc />
    protected override IQuantizableWeight? PlainHead =>
        _lmHead is null ? Model.EmbedTokens : _lmHead is Linear { Bias: null, FanInFanOut: false } l ? l : null;

    /// <inheritdoc />
    public override Tensor Head(Tensor hidden) =>
        _lmHead is null ? Model.EmbedTokens.AsHead(hidden) : _lmHead.Forward(hidden);

    /// <inheritdoc />
    protected override Tensor Body(ReadOnlySpan<int> ids, int batch, int time) =>
        Rows(Model.Run(ids, batch, time, null, GradientCheckpointing), batch * time);

    /// <inheritdoc />
    protected override Tensor BodyCached(ReadOnlySpan<int> ids, KvCache cache) =>
        Rows(Model.Run(ids, 1, ids.Length, cache), ids.Length);

    private Tensor Rows(Tensor h, int rows)
    {
        if (_rowsShape is null || _rowsShape[0] != rows) _rowsShape = [rows, Config.HiddenSize];
        return Functional.Reshape(h, _rowsShape);
    }

    /// <inheritdoc />
    protected override void OnChildReplaced(string name, Module module)
    {
        if (name == "lm_head") _lmHead = module;
    }
}
