using LoRA.Managed.Autograd;
using LoRA.Managed.Models.Hf;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Models;

/// <summary>
/// A decoder-only language model loaded from a Hugging Face folder (<see cref="HfModel.Load(string)"/>): GPT-2 or the
/// Llama family, with Hugging Face's module names so LoRA's <c>target_modules</c> mean what they mean in PEFT.
/// </summary>
/// <remarks>
/// Two forwards: <see cref="Forward(ReadOnlySpan{int}, int, int)"/> over whole (batch, time) blocks records the
/// autograd graph for training; <see cref="ForwardCached"/> runs new tokens against a <see cref="KvCache"/> without
/// recording, for scoring and generation. Both go through the same child modules, so an adapter injected by
/// <see cref="Lora.LoraModel"/> acts in both.
/// </remarks>
public abstract class CausalLm : Module, ICausalLanguageModel, IFloat32Checksum
{
    /// <summary>Creates the base with its configuration.</summary>
    protected CausalLm(HfConfig config) => Config = config ?? throw new ArgumentNullException(nameof(config));

    /// <summary>The parsed <c>config.json</c>.</summary>
    public HfConfig Config { get; }

    /// <inheritdoc />
    public int VocabSize => Config.VocabSize;

    /// <inheritdoc />
    public int MaxSequenceLength => Config.MaxContext;

    /// <summary>Token ids that end generation (<c>generation_config.json</c>, else <c>config.json</c>).</summary>
    public IReadOnlyList<int> EosTokenIds { get; internal set; } = [];

    /// <summary>The folder the model was loaded from, or null (recorded in adapters as
    /// <c>base_model_name_or_path</c>).</summary>
    public string? SourceDirectory { get; internal set; }

    /// <inheritdoc />
    public string? NameOrPath => SourceDirectory;

    /// <summary>The fingerprint of the float32 weights a quantised base was loaded from (set by
    /// <see cref="Hf.HfModel"/>), or null for a float32 model.</summary>
    public string? Float32Checksum { get; internal set; }

    /// <inheritdoc />
    public void ForgetFloat32Checksum() => Float32Checksum = null;

    /// <summary>
    /// When true, training forwards run each block under gradient checkpointing (Hugging Face's
    /// <c>gradient_checkpointing_enable()</c>, which PEFT's <c>prepare_model_for_kbit_training</c> turns on for
    /// QLoRA): a step keeps each block's input and output and recomputes the block's activations in backward, for
    /// about a third more compute. Dropout inside the blocks (LoRA's) draws the same masks in the recomputation: the
    /// states of each block's generators are replayed, as <c>torch.utils.checkpoint</c>'s <c>preserve_rng_state</c>.
    /// </summary>
    public bool GradientCheckpointing { get; set; }

    /// <summary>
    /// Next-token logits for ids (batch, time), row-major: returns (batch·time, V), row <c>b·time + t</c> predicting
    /// the token after position t.
    /// </summary>
    /// <exception cref="ArgumentException">The ids do not fill batch × time, or time exceeds
    /// <see cref="HfConfig.MaxContext"/>.</exception>
    public Tensor Forward(ReadOnlySpan<int> ids, int batch, int time)
    {
        CheckBlock(ids.Length, batch, time);
        return Head(Body(ids, batch, time));
    }

    /// <summary>As <see cref="Forward(ReadOnlySpan{int}, int, int)"/> for ids stored as whole-number floats in a (B, T)
    /// tensor.</summary>
    public override Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.Rank != 2)
            throw new ArgumentException($"{GetType().Name}: expected token ids (B, T), got " +
                $"{Shapes.Format(input.Shape)}.");
        int[] ids = new int[input.Count];
        for (int i = 0; i < ids.Length; i++) ids[i] = (int)input[i];
        return Forward(ids, input.Shape[0], input.Shape[1]);
    }

    /// <summary>
    /// Runs <paramref name="ids"/> (the next tokens, at positions <c>cache.Length…</c>) through the model against the
    /// cache, appends their keys and values, and returns the final-norm hidden states (n, C); apply <see cref="Head"/>
    /// to the rows whose logits you need. Nothing is recorded for autograd.
    /// </summary>
    /// <exception cref="ArgumentException">No ids, or the positions would pass
    /// <see cref="HfConfig.MaxContext"/>.</exception>
    /// <exception cref="InvalidOperationException">The cache is full.</exception>
    public Tensor ForwardCached(ReadOnlySpan<int> ids, KvCache cache)
    {
        ArgumentNullException.ThrowIfNull(cache);
        if (ids.Length == 0) throw new ArgumentException($"{GetType().Name}: no ids to run.");
        if (cache.Length + ids.Length > Config.MaxContext)
            throw new ArgumentException($"{GetType().Name}: positions " +
                $"{cache.Length}..{cache.Length + ids.Length - 1} exceed the model's maximum context " +
                $"{Config.MaxContext}.");
        cache.EnsureRoom(ids.Length);
        using var _ = Tape.NoGrad();
        Tensor h = BodyCached(ids, cache);
        cache.Advance(ids.Length);
        return h;
    }

    /// <summary>A cache sized for this model and <paramref name="capacity"/> positions.</summary>
    public KvCache NewCache(int capacity) =>
        new(Config.Layers, Math.Min(capacity, Config.MaxContext), Config.KvHeads, HeadDim);

    /// <summary>The language-model head: hidden states (…, C) → logits (…, V).</summary>
    public abstract Tensor Head(Tensor hidden);

    /// <summary>Head size of attention (key/value row width per head).</summary>
    protected int HeadDim => Config.Architecture == HfArchitecture.Gpt2 ? Config.HiddenSize / Config.Heads
        : Config.HeadDim;

    /// <summary>The blocks and final norm over (batch, time): returns (batch·time, C).</summary>
    protected abstract Tensor Body(ReadOnlySpan<int> ids, int batch, int time);

    /// <summary>The blocks and final norm for new tokens against the cache: returns (n, C); the cache is advanced by
    /// the caller.</summary>
    protected abstract Tensor BodyCached(ReadOnlySpan<int> ids, KvCache cache);

    /// <summary>
    /// The training loss, <c>CrossEntropy(Head(Body(ids)), targets)</c>; with a frozen, bias-free head (LoRA
    /// fine-tuning), float32 or quantised, the head is fused into the loss (<c>Functional.LinearCrossEntropy</c>)
    /// so the (batch·time) × vocabulary logits are never held.
    /// </summary>
    public Tensor Loss(ReadOnlySpan<int> ids, ReadOnlySpan<int> targets, int batch, int time)
    {
        CheckBlock(ids.Length, batch, time);
        Tensor hidden = Body(ids, batch, time);
        return PlainHead switch
        {
            { QuantizedWeight: { } q } => Functional.LinearCrossEntropy(hidden, q, targets),
            { Weight: { RequiresGrad: false } w } => Functional.LinearCrossEntropy(hidden, w, targets),
            _ => Functional.CrossEntropy(Head(hidden), targets),
        };
    }

    /// <summary>The module whose weight (<c>[V, C]</c>, float32 or quantised) is the head when <see cref="Head"/> is
    /// exactly <c>Linear(hidden, weight)</c> (no bias, no adapter): the <c>lm_head</c> Linear, or the tied
    /// embedding table.</summary>
    protected abstract IQuantizableWeight? PlainHead { get; }

    /// <summary>
    /// Mean next-token NLL of (batch, time) ids against their targets (−100 ignored), scored row by row through a key/
    /// value cache in chunks (<see cref="LmScoring.NextTokenLoss"/>), so validation holds one chunk's activations and
    /// logits rather than a whole batch's.
    /// </summary>
    public double NextTokenLoss(ReadOnlySpan<int> ids, ReadOnlySpan<int> targets, int batch, int time)
    {
        // Validation calls this once per batch, between training steps: one cache and arena serve every call, rather
        // than tens of megabytes of garbage per batch beside the training step's tensors.
        if (_lossScratch is not { } s || s.Cache.Capacity < time)
            _lossScratch = s = (NewCache(Math.Min(Math.Max(1, time), Config.MaxContext)), new TensorArena());
        return LmScoring.NextTokenLoss(this, ids, targets, batch, time, s.Cache, s.Arena);
    }

    private (KvCache Cache, TensorArena Arena)? _lossScratch;

    /// <summary>Mean negative log-likelihood over windows of at most <paramref name="context"/> tokens (see
    /// <see cref="LmScoring"/>).</summary>
    public ScoreResult Score(ReadOnlySpan<int> ids, int context = 0) => LmScoring.Score(this, ids, context);

    /// <summary>Generates up to <see cref="GenerationSettings.MaxNewTokens"/> tokens after the prompt (see
    /// <see cref="LmGeneration"/>).</summary>
    public int[] Generate(ReadOnlySpan<int> promptIds, GenerationSettings settings, Action<int>? onToken = null) =>
        LmGeneration.Generate(this, promptIds, settings, onToken);

    private void CheckBlock(int count, int batch, int time)
    {
        if (batch <= 0 || time <= 0 || (long)batch * time != count)
            throw new ArgumentException($"{GetType().Name}: {count} ids do not fill batch {batch} × time {time}.");
        if (time > Config.MaxContext)
            throw new ArgumentException($"{GetType().Name}: sequence length {time} exceeds the model's maximum " +
                $"context {Config.MaxContext}.");
    }
}
