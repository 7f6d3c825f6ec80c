using LoRA.Managed.Autograd;
using LoRA.Managed.Tensors;

using LoRA.Managed.Nn;

namespace LoRA.Managed.Models;

/// <summary>
/// A GPT-style decoder-only language model (Radford et al. 2019, "Language Models are Unsupervised Multitask
/// Learners"; structure as Karpathy's nanoGPT <c>model.py</c>): token embedding <c>wte</c> + learned position
/// embedding <c>wpe</c>, <c>drop</c>, <see cref="GptConfig.Layers"/> pre-norm <see cref="GptBlock"/>s under
/// <c>blocks.{i}</c>, the final norm <c>ln_f</c> and the head <c>lm_head</c> (C → V, no bias; not tied to <c>wte</c>,
/// so LoRA and checkpoints see two ordinary tensors). Attention projections are therefore named
/// <c>blocks.0.attn.q_proj</c>, <c>blocks.0.attn.k_proj</c>, … in <see cref="Module.NamedModules"/>.
/// </summary>
/// <remarks>
/// Initialisation follows nanoGPT's <c>_init_weights</c>: every Linear and Embedding weight N(0, 0.02), biases 0,
/// and the projections back into the residual stream (<c>o_proj</c>, <c>fc2</c>) N(0, 0.02/√(2·Layers)) (GPT-2 §2.3),
/// drawn in <see cref="Module.NamedModules"/> order after construction, so one seed gives one model.
/// </remarks>
public sealed class GptModel : Module, ICausalLanguageModel
{
    private Module _drop, _lnF, _lmHead;
    // The position ids and shapes of the last (batch, time), so a training step does not allocate them each forward.
    // A cache is replaced, never mutated, so a forward on another thread cannot see a half-written one.
    private InputLayout? _layout;
    // The modules at wte/wpe: the tables themselves, or adapters wrapping them.
    private ITokenEmbedding _wteLookup, _wpeLookup;

    /// <summary>Builds and initialises the model for <paramref name="config"/> from <paramref name="generator"/> (also
    /// used for dropout masks).</summary>
    /// <exception cref="ArgumentException">The config is invalid (the message names the field).</exception>
    public GptModel(GptConfig config, TorchGenerator generator)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(generator);
        config.Validate();
        Config = config;
        _wteLookup = RegisterModule("wte", new Embedding(config.VocabSize, config.Embed, generator));
        _wpeLookup = RegisterModule("wpe", new Embedding(config.BlockSize, config.Embed, generator));
        _drop = RegisterModule("drop", new Dropout(config.Dropout, generator));
        var blocks = new Module[config.Layers];
        for (int i = 0; i < blocks.Length; i++) blocks[i] = new GptBlock(config, generator);
        Blocks = RegisterModule("blocks", new Sequential(blocks));
        _lnF = RegisterModule("ln_f", new LayerNorm(config.Embed));
        _lmHead = RegisterModule("lm_head", new Linear(config.Embed, config.VocabSize, generator, bias: false));
        InitWeights(generator);
    }

    /// <summary>The sizes this model was built with.</summary>
    public GptConfig Config { get; }

    /// <inheritdoc />
    public int VocabSize => Config.VocabSize;

    /// <inheritdoc />
    public int MaxSequenceLength => Config.BlockSize;

    /// <summary>Token embedding, (V, C).</summary>
    public Embedding Wte => _wteLookup.Table;

    /// <summary>Position embedding, (BlockSize, C).</summary>
    public Embedding Wpe => _wpeLookup.Table;

    /// <summary>The transformer blocks, children "0", "1", ….</summary>
    public Sequential Blocks { get; private set; }

    /// <summary>The final layer norm.</summary>
    public Module LnF => _lnF;

    /// <summary>The language-model head, C → V (a <see cref="Linear"/> unless replaced).</summary>
    public Module LmHead => _lmHead;

    /// <summary>
    /// Next-token logits for token ids (batch, time), row-major in <paramref name="ids"/>: returns (batch·time, V),
    /// row <c>b·time + t</c> predicting the token after position t, so
    /// <c>Functional.CrossEntropy(logits, targets)</c> is the language-model loss.
    /// </summary>
    /// <exception cref="ArgumentException">The ids do not fill batch × time, or time exceeds the block
    /// size.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An id is outside the vocabulary.</exception>
    public Tensor Forward(ReadOnlySpan<int> ids, int batch, int time)
    {
        if (batch <= 0 || time <= 0 || (long)batch * time != ids.Length)
            throw new ArgumentException($"GptModel: {ids.Length} ids do not fill batch {batch} × time {time}.");
        if (time > Config.BlockSize)
            throw new ArgumentException($"GptModel: sequence length {time} exceeds the block size (max_seq_length) " +
                $"{Config.BlockSize}.");
        InputLayout layout = _layout is { } cached && cached.Batch == batch && cached.Time == time
            ? cached
            : _layout = new InputLayout(batch, time, Config.Embed);
        // (B, T, C)
        Tensor x = Functional.Add(_wteLookup.Forward(ids, layout.IdsShape),
            _wpeLookup.Forward(layout.Positions, layout.IdsShape));
        x = _drop.Forward(x);
        x = Blocks.Forward(x);                                                                       // (B, T, C)
        x = _lnF.Forward(x);
        return _lmHead.Forward(Functional.Reshape(x, layout.RowsShape));                             // (B·T, V)
    }

    /// <summary>
    /// Same as <see cref="Forward(ReadOnlySpan{int}, int, int)"/> for ids stored as whole-number floats in a (B, T)
    /// tensor, so the model also fits APIs that pass a <see cref="Tensor"/>.
    /// </summary>
    /// <exception cref="ArgumentException">The input is not (B, T) or holds a value that is not a whole
    /// number.</exception>
    public override Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.Rank != 2)
            throw new ArgumentException($"GptModel: expected token ids (B, T), got {Shapes.Format(input.Shape)}.");
        return Forward(Embedding.IdsFromFloats(input, "GptModel"), input.Shape[0], input.Shape[1]);
    }

    /// <inheritdoc />
    protected override void OnChildReplaced(string name, Module module)
    {
        switch (name, module)
        {
            case ("drop", _): _drop = module; return;
            case ("ln_f", _): _lnF = module; return;
            case ("lm_head", _): _lmHead = module; return;
            // An adapter that wraps the table (LoRA's LoraEmbedding) looks ids up; the table stays Wte/Wpe.
            case ("wte", ITokenEmbedding e): _wteLookup = e; return;
            case ("wpe", ITokenEmbedding e): _wpeLookup = e; return;
            case ("blocks", Sequential s): Blocks = s; return;
        }
        // Refuse: ReplaceChild puts the old child back.
        Module old = name switch { "wte" => Wte, "wpe" => Wpe, _ => Blocks };
        throw new ArgumentException($"GptModel: '{name}' must stay a {old.GetType().Name}, not a " +
            $"{module.GetType().Name}.");
    }

    /// <summary>Position ids <c>t</c> for every (b, t), and the shapes (B, T) and (B·T, C), for one (batch,
    /// time).</summary>
    private sealed class InputLayout
    {
        public InputLayout(int batch, int time, int embed)
        {
            Batch = batch;
            Time = time;
            Positions = new int[batch * time];
            for (int i = 0; i < Positions.Length; i++) Positions[i] = i % time;
            IdsShape = [batch, time];
            RowsShape = [batch * time, embed];
        }

        public int Batch { get; }
        public int Time { get; }
        public int[] Positions { get; }
        public int[] IdsShape { get; }
        public int[] RowsShape { get; }
    }

    private void InitWeights(TorchGenerator generator)
    {
        float residualStd = 0.02f / MathF.Sqrt(2f * Config.Layers);
        foreach (var (name, module) in NamedModules())
        {
            switch (module)
            {
                case Linear linear:
                    bool residual = name.EndsWith(".o_proj", StringComparison.Ordinal)
                        || name.EndsWith(".fc2", StringComparison.Ordinal);
                    generator.FillNormal(linear.Weight.Data, 0f, residual ? residualStd : 0.02f);
                    linear.Bias?.Data.Clear();
                    break;
                case Embedding embedding:
                    generator.FillNormal(embedding.Weight.Data, 0f, 0.02f);
                    break;
            }
        }
    }
}
