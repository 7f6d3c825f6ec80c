namespace LoRA.Managed.Text.Tokenizers;

/// <summary>
/// What the post-processor adds around one encoded text when special tokens are requested: the ids of
/// <c>TemplateProcessing</c>'s <c>single</c> template before and after <c>$A</c> (Llama's <c>&lt;s&gt;</c>), or
/// nothing (<c>ByteLevel</c>, whose other effects are on offsets only).
/// </summary>
internal sealed record SpecialTokenTemplate(int[] Prefix, int[] Suffix)
{
    public static readonly SpecialTokenTemplate None = new([], []);

    /// <summary>Both templates' tokens in order (a <c>Sequence</c> of post-processors).</summary>
    public SpecialTokenTemplate Then(SpecialTokenTemplate next) =>
        new([.. Prefix, .. next.Prefix], [.. Suffix, .. next.Suffix]);
}
