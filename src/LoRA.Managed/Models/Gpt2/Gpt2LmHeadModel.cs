using LoRA.Managed.Autograd;
using LoRA.Managed.Models.Hf;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Models;

/// <summary>
/// GPT-2 as Hugging Face's <c>GPT2LMHeadModel</c>: the body <c>transformer</c> (<see cref="Gpt2Model"/>) and a head
/// tied to <c>transformer.wte</c>, so <c>lm_head.weight</c> is neither a parameter here nor in the file.
/// </summary>
public sealed class Gpt2LmHeadModel : CausalLm
{
    private int[]? _rowsShape;

    /// <summary>Creates the model with zero weights (to be loaded, see <see cref="HfModel.Load(string)"/>).</summary>
    /// <exception cref="ArgumentException">The config is not GPT-2's.</exception>
    public Gpt2LmHeadModel(HfConfig config) : base(config)
    {
        if (config.Architecture != HfArchitecture.Gpt2)
            throw new ArgumentException($"Gpt2LmHeadModel: model_type is {config.ModelType}, not gpt2.");
        Transformer = RegisterModule("transformer", new Gpt2Model(config));
    }

    /// <summary>The body.</summary>
    public Gpt2Model Transformer { get; }

    /// <inheritdoc />
    public override Tensor Head(Tensor hidden) => Transformer.Wte.AsHead(hidden);

    /// <inheritdoc />
    protected override IQuantizableWeight? PlainHead => Transformer.Wte;

    /// <inheritdoc />
    protected override Tensor Body(ReadOnlySpan<int> ids, int batch, int time)
    {
        Tensor h = Transformer.Run(ids, batch, time, 0, null, GradientCheckpointing);
        if (_rowsShape is null || _rowsShape[0] != batch * time) _rowsShape = [batch * time, Config.HiddenSize];
        return Functional.Reshape(h, _rowsShape);
    }

    /// <inheritdoc />
    protected override Tensor BodyCached(ReadOnlySpan<int> ids, KvCache cache)
    {
        Tensor h = Transformer.Run(ids, 1, ids.Length, cache.Length, cache);
        if (_rowsShape is null || _rowsShape[0] != ids.Length) _rowsShape = [ids.Length, Config.HiddenSize];
        return Functional.Reshape(h, _rowsShape);
    }
}
