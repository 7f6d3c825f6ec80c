using System.Text.Json;
using LoRA.Managed.IO;

namespace LoRA.Managed.Models.Hf;

/// <summary>The two architectures this library builds from a Hugging Face folder.</summary>
public enum HfArchitecture
{
    /// <summary><c>GPT2LMHeadModel</c>: learned positions, LayerNorm, gelu_new, fused Conv1D attention, tied
    /// head.</summary>
    Gpt2,

    /// <summary><c>LlamaForCausalLM</c> and its config-only variants (<c>qwen2</c>, <c>mistral</c>).</summary>
    Llama,
}

/// <summary>
/// A causal LM's <c>config.json</c> as <c>save_pretrained</c> writes it, reduced to what the forward needs, with
/// GPT-2's field names (<c>n_embd</c>, <c>n_layer</c>, …) mapped onto Llama's. Parsing refuses, with one line naming
/// the file and the field, every <c>model_type</c> other than gpt2, llama, qwen2 and mistral, every activation or
/// <c>rope_scaling</c> type the forward does not implement, and sizes that do not fit together.
/// </summary>
public sealed record HfConfig
{
    /// <summary>The file name Hugging Face uses.</summary>
    public const string FileName = "config.json";

    /// <summary><c>model_type</c> as written (gpt2, llama, qwen2, mistral).</summary>
    public required string ModelType { get; init; }

    /// <summary>Which module tree the model uses.</summary>
    public HfArchitecture Architecture => ModelType == "gpt2" ? HfArchitecture.Gpt2 : HfArchitecture.Llama;

    /// <summary><c>vocab_size</c>.</summary>
    public required int VocabSize { get; init; }

    /// <summary><c>hidden_size</c> (GPT-2: <c>n_embd</c>).</summary>
    public required int HiddenSize { get; init; }

    /// <summary><c>num_hidden_layers</c> (GPT-2: <c>n_layer</c>).</summary>
    public required int Layers { get; init; }

    /// <summary><c>num_attention_heads</c> (GPT-2: <c>n_head</c>).</summary>
    public required int Heads { get; init; }

    /// <summary><c>num_key_value_heads</c> (default: <see cref="Heads"/>, plain multi-head attention).</summary>
    public required int KvHeads { get; init; }

    /// <summary><c>head_dim</c> (default <c>hidden_size / num_attention_heads</c>).</summary>
    public required int HeadDim { get; init; }

    /// <summary><c>intermediate_size</c> (GPT-2: <c>n_inner</c>, default 4·n_embd).</summary>
    public required int IntermediateSize { get; init; }

    /// <summary><c>max_position_embeddings</c> (GPT-2: <c>n_positions</c>).</summary>
    public required int MaxPositions { get; init; }

    /// <summary>The longest sequence the forward may see: <see cref="MaxPositions"/>, or a smaller sliding window
    /// (Mistral, Qwen2) beyond which the models differ.</summary>
    public required int MaxContext { get; init; }

    /// <summary><c>rms_norm_eps</c> (GPT-2: <c>layer_norm_epsilon</c>).</summary>
    public required float NormEps { get; init; }

    /// <summary><c>rope_theta</c> (Llama family; default 10000).</summary>
    public double RopeTheta { get; init; } = 10000;

    /// <summary>The <c>llama3</c> rope scaling, or null for plain RoPE.</summary>
    public RopeScaling? RopeScaling { get; init; }

    /// <summary>Biases on q_proj, k_proj and v_proj (Llama's <c>attention_bias</c>; always for Qwen2).</summary>
    public bool QkvBias { get; init; }

    /// <summary>A bias on o_proj (Llama's <c>attention_bias</c>; never for Qwen2 and Mistral).</summary>
    public bool OutputBias { get; init; }

    /// <summary>Biases on the MLP's projections (Llama's <c>mlp_bias</c>).</summary>
    public bool MlpBias { get; init; }

    /// <summary><c>tie_word_embeddings</c>: the head reuses the token embedding (GPT-2's default true, Llama's
    /// false).</summary>
    public required bool TieWordEmbeddings { get; init; }

    /// <summary><c>bos_token_id</c>, or null.</summary>
    public int? BosTokenId { get; init; }

    /// <summary><c>eos_token_id</c> (an int or a list in the file).</summary>
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];

    /// <summary>Reads <c>config.json</c> from <paramref name="path"/>.</summary>
    /// <exception cref="InvalidDataFormatException">A field is missing, malformed or unsupported; the message names the
    /// file and field.</exception>
    public static HfConfig Read(string path)
    {
        using JsonDocument doc = JsonFields.Parse(path);
        return Parse(new JsonFields(doc.RootElement, path));
    }

    internal static HfConfig Parse(JsonFields f)
    {
        string type = f.String("model_type")
            ?? throw f.Bad("model_type", "missing; expected gpt2, llama, qwen2 or mistral.");
        if (type is not ("gpt2" or "llama" or "qwen2" or "mistral"))
            throw f.Bad("model_type", $"'{type}' is not supported (gpt2, llama, qwen2, mistral).");
        bool gpt2 = type == "gpt2";
        int vocab = f.RequiredInt(["vocab_size"], 1);
        int hidden = f.RequiredInt(gpt2 ? ["n_embd", "hidden_size"] : ["hidden_size"], 1);
        int layers = f.RequiredInt(gpt2 ? ["n_layer", "num_hidden_layers"] : ["num_hidden_layers"], 1);
        int heads = f.RequiredInt(gpt2 ? ["n_head", "num_attention_heads"] : ["num_attention_heads"], 1);
        int positions = f.RequiredInt(gpt2 ? ["n_positions", "max_position_embeddings"]
            : ["max_position_embeddings"], 1);
        int kvHeads = gpt2 ? heads : f.Int("num_key_value_heads", 1) ?? heads;
        if (heads % kvHeads != 0)
            throw f.Bad("num_key_value_heads", $"{kvHeads} does not divide num_attention_heads {heads}.");
        int headDim = gpt2 ? 0 : f.Int("head_dim", 1) ?? 0;
        if (headDim == 0)
        {
            if (hidden % heads != 0)
                throw f.Bad(gpt2 ? "n_embd" : "hidden_size", $"{hidden} is not a multiple of the {heads} heads.");
            headDim = hidden / heads;
        }
        if (!gpt2 && headDim % 2 != 0)
            throw f.Bad("head_dim", $"{headDim} is odd; rotary embeddings need an even head size.");
        int inner = gpt2 ? f.Int("n_inner", 1) ?? 4 * hidden : f.RequiredInt(["intermediate_size"], 1);
        double eps = gpt2 ? f.Number("layer_norm_epsilon") ?? 1e-5 : f.Number("rms_norm_eps") ?? 1e-6;
        if (!(eps > 0)) throw f.Bad(gpt2 ? "layer_norm_epsilon" : "rms_norm_eps", $"{eps} is not positive.");

        string act = (gpt2 ? f.String("activation_function") ?? "gelu_new" : f.String("hidden_act") ?? "silu");
        if (gpt2 && act is not ("gelu_new" or "gelu_pytorch_tanh"))
            throw f.Bad("activation_function", $"'{act}' is not supported (gelu_new, the tanh approximation).");
        if (!gpt2 && act != "silu") throw f.Bad("hidden_act", $"'{act}' is not supported (silu).");
        if (gpt2)
        {
            if (f.Bool("scale_attn_by_inverse_layer_idx") == true)
                throw f.Bad("scale_attn_by_inverse_layer_idx", "true is not supported.");
            if (f.Bool("scale_attn_weights") == false) throw f.Bad("scale_attn_weights", "false is not supported.");
        }
        if (!gpt2 && f.Int("pretraining_tp", 1) is > 1)
            throw f.Bad("pretraining_tp", "values above 1 are not supported.");

        int context = positions;
        bool sliding = type == "mistral" ? f.Has("sliding_window")
            : type == "qwen2" && f.Bool("use_sliding_window") == true;
        if (sliding)
        {
            int window = f.Int("sliding_window", 1) ?? positions;
            context = Math.Min(context, window);
        }

        bool attentionBias = !gpt2 && type == "llama" && f.Bool("attention_bias") == true;
        return new HfConfig
        {
            ModelType = type,
            VocabSize = vocab,
            HiddenSize = hidden,
            Layers = layers,
            Heads = heads,
            KvHeads = kvHeads,
            HeadDim = headDim,
            IntermediateSize = inner,
            MaxPositions = positions,
            MaxContext = context,
            NormEps = (float)eps,
            RopeTheta = gpt2 ? 10000 : f.Number("rope_theta") ?? 10000,
            RopeScaling = gpt2 ? null : ReadRopeScaling(f),
            QkvBias = type == "qwen2" || attentionBias,
            OutputBias = attentionBias,
            MlpBias = type == "llama" && f.Bool("mlp_bias") == true,
            TieWordEmbeddings = f.Bool("tie_word_embeddings") ?? gpt2,
            BosTokenId = f.Int("bos_token_id", 0),
            EosTokenIds = f.IntOrList("eos_token_id"),
        };
    }

    private static RopeScaling? ReadRopeScaling(JsonFields f)
    {
        if (f.Element("rope_scaling") is not { } el) return null;
        if (el.ValueKind != JsonValueKind.Object)
            throw f.Bad("rope_scaling", $"expected an object or null, found {el.ValueKind}.");
        var s = new JsonFields(el, f.File);
        string kind = s.String("rope_type") ?? s.String("type") ?? throw f.Bad("rope_scaling.rope_type", "missing.");
        if (kind == "default") return null;
        if (kind != "llama3") throw f.Bad("rope_scaling.rope_type", $"'{kind}' is not supported (default, llama3).");
        double Need(string name) => s.Number(name) ?? throw f.Bad($"rope_scaling.{name}", "missing.");
        double factor = Need("factor"), low = Need("low_freq_factor"), high = Need("high_freq_factor");
        int original = s.Int("original_max_position_embeddings", 1)
            ?? throw f.Bad("rope_scaling.original_max_position_embeddings", "missing.");
        if (!(factor > 0) || !(high > low) || !(low > 0))
            throw f.Bad("rope_scaling",
                $"factor {factor} must be positive and high_freq_factor {high} above low_freq_factor {low} > 0.");
        return new RopeScaling(factor, low, high, original);
    }
}
