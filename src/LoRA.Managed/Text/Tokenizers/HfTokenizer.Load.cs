using LoRA.Managed.IO;

namespace LoRA.Managed.Text.Tokenizers;

public sealed partial class HfTokenizer
{
    /// <summary>The token transformers' GPT-2 classes use for BOS, EOS and UNK when the configuration names
    /// none.</summary>
    private const string Gpt2EndOfText = "<|endoftext|>";

    /// <summary>
    /// Loads the tokenizer of a model folder as <c>save_pretrained</c> writes it: <c>tokenizer.json</c> if present,
    /// else <c>vocab.json</c> + <c>merges.txt</c>; plus <c>tokenizer_config.json</c> and
    /// <c>special_tokens_map.json</c> when present.
    /// </summary>
    /// <exception cref="FileNotFoundException">The folder holds neither tokenizer.json nor vocab.json +
    /// merges.txt.</exception>
    /// <exception cref="InvalidDataFormatException">A file is malformed or asks for something unsupported.</exception>
    public static HfTokenizer FromFolder(string dir)
    {
        ArgumentNullException.ThrowIfNull(dir);
        string config = Path.Combine(dir, "tokenizer_config.json");
        string? configPath = File.Exists(config) ? config : null;
        string json = Path.Combine(dir, "tokenizer.json");
        if (File.Exists(json)) return FromTokenizerJson(json, configPath);
        string vocab = Path.Combine(dir, "vocab.json"), merges = Path.Combine(dir, "merges.txt");
        if (File.Exists(vocab) && File.Exists(merges)) return FromVocabAndMerges(vocab, merges, configPath);
        throw new FileNotFoundException($"{dir}: no tokenizer.json, and no vocab.json with merges.txt.", json);
    }

    /// <summary>
    /// Loads a <c>tokenizer.json</c>; <paramref name="tokenizerConfigPath"/> (and the <c>special_tokens_map.json</c>
    /// beside it, if any) names the special tokens and may override which of BOS and EOS are added.
    /// </summary>
    /// <exception cref="FileNotFoundException">A named file does not exist.</exception>
    /// <exception cref="InvalidDataFormatException">A file is malformed or asks for something unsupported.</exception>
    public static HfTokenizer FromTokenizerJson(string path, string? tokenizerConfigPath = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        var definition = TokenizerJsonReader.Read(File.ReadAllBytes(path), path);
        return Create(definition, ReadConfig(tokenizerConfigPath, path), tokenizerConfigPath);
    }

    /// <summary>A tokenizer.json already in memory; <paramref name="source"/> names it in errors (tests,
    /// fuzzing).</summary>
    internal static HfTokenizer FromTokenizerJsonBytes(ReadOnlyMemory<byte> utf8, string source,
        TokenizerConfig? config = null) =>
        Create(TokenizerJsonReader.Read(utf8, source), config ?? TokenizerConfig.Empty, null);

    /// <summary>
    /// Loads GPT-2's <c>vocab.json</c> + <c>merges.txt</c> as transformers' <c>GPT2TokenizerFast</c> converts them:
    /// byte-level BPE with the GPT-2 regex (<c>add_prefix_space</c> from the configuration, default false), the
    /// configuration's added and special tokens (<c>&lt;|endoftext|&gt;</c> when it names none).
    /// </summary>
    /// <exception cref="InvalidDataFormatException">
    /// A file is malformed, or the configuration names a tokenizer class these files cannot describe.
    /// </exception>
    public static HfTokenizer FromVocabAndMerges(string vocabJson, string mergesTxt, string? tokenizerConfigPath = null)
    {
        ArgumentNullException.ThrowIfNull(vocabJson);
        ArgumentNullException.ThrowIfNull(mergesTxt);
        var config = ReadConfig(tokenizerConfigPath, vocabJson);
        // Other classes (Qwen2Tokenizer, ...) build a different pipeline from the same two files.
        if (config.TokenizerClass is { } cls && cls is not ("GPT2Tokenizer" or "GPT2TokenizerFast"))
            throw new InvalidDataFormatException(tokenizerConfigPath!, "tokenizer_class",
                $"\"{cls}\" from vocab.json + merges.txt is not supported (only GPT2Tokenizer); use the " +
                "model's tokenizer.json.");
        var model = VocabMergesReader.Read(File.ReadAllBytes(vocabJson), vocabJson, File.ReadAllBytes(mergesTxt),
            mergesTxt);

        var added = new List<AddedToken>(config.AddedTokensDecoder);
        bool namesNone = config.BosToken is null && config.EosToken is null && config.UnknownToken is null;
        if (namesNone && model.TryGetId(Gpt2EndOfText, out _))
            config = config with { BosToken = Gpt2EndOfText, EosToken = Gpt2EndOfText, UnknownToken = Gpt2EndOfText };
        // transformers registers every named special token as a special added token with the vocabulary's id.
        string?[] named = [config.BosToken, config.EosToken, config.UnknownToken, config.PadToken,
            .. config.AdditionalSpecialTokens];
        foreach (string? token in named)
            if (token is not null && !added.Any(t => t.Content == token) && model.TryGetId(token, out int id))
                added.Add(new AddedToken(id, token, Special: true, LStrip: false, RStrip: false, SingleWord: false,
                    Normalized: false));
        var definition = new TokenizerDefinition(model, added, Normalizer: null,
            new ByteLevelPreTokenizer(config.AddPrefixSpace ?? false, useRegex: true), ByteLevel: true,
            new ByteLevelDecoder(),
            SpecialTokenTemplate.None);
        return Create(definition, config, tokenizerConfigPath);
    }

    // special_tokens_map.json is looked for beside the configuration, or beside the tokenizer file when there is none.
    private static TokenizerConfig ReadConfig(string? tokenizerConfigPath, string tokenizerFile)
    {
        if (tokenizerConfigPath is not null && !File.Exists(tokenizerConfigPath))
            throw new FileNotFoundException($"{tokenizerConfigPath}: no such file.", tokenizerConfigPath);
        string? dir = Path.GetDirectoryName(Path.GetFullPath(tokenizerConfigPath ?? tokenizerFile));
        return TokenizerConfig.Read(tokenizerConfigPath,
            dir is null ? null : Path.Combine(dir, "special_tokens_map.json"));
    }

    // add_bos_token / add_eos_token, when the configuration sets them, decide that side of the template (as
    // LlamaTokenizerFast.update_post_processor and GPT2Converter do); otherwise the post_processor's template stands.
    private static HfTokenizer Create(TokenizerDefinition definition, TokenizerConfig config, string? configPath)
    {
        // GPT2TokenizerFast (and its Roberta/Bart kin) rebuilds a plain ByteLevel pre-tokenizer when the
        // configuration's add_prefix_space differs from the file's; other classes leave the file's pipeline alone.
        if (config.AddPrefixSpace is { } prefix && definition.PreTokenizer is ByteLevelPreTokenizer byteLevel
            && byteLevel.AddPrefixSpace != prefix
            && config.TokenizerClass is null or "GPT2Tokenizer" or "GPT2TokenizerFast")
            definition = definition with { PreTokenizer = byteLevel.WithPrefixSpace(prefix) };
        if (config.BosToken is null && config.EosToken is null && definition.Model.TryGetId(Gpt2EndOfText, out _)
            && definition.ByteLevel && config.TokenizerClass is null or "GPT2Tokenizer" or "GPT2TokenizerFast")
            config = config with { BosToken = Gpt2EndOfText, EosToken = Gpt2EndOfText };
        var template = definition.Template;
        int[] Side(bool? add, string? token, string field, int[] fromFile)
        {
            if (add is not { } on) return fromFile;
            if (!on) return [];
            int? id = token is null ? null
                : definition.AddedTokens.LastOrDefault(t => t.Content == token)?.Id
                    ?? (definition.Model.TryGetId(token, out int m) ? m : null);
            return id is { } found ? [found]
                : throw new InvalidDataFormatException(configPath!, field,
                    $"is true but the token \"{token}\" is not in the vocabulary.");
        }
        template = new SpecialTokenTemplate(Side(config.AddBosToken, config.BosToken, "add_bos_token", template.Prefix),
            Side(config.AddEosToken, config.EosToken, "add_eos_token", template.Suffix));
        return new HfTokenizer(definition, template, config.BosToken, config.EosToken, config.PadToken);
    }
}
