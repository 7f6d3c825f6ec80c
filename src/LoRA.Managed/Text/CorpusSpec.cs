namespace LoRA.Managed.Text;

/// <summary>One file a corpus is made of: its path inside the package, and the SHA-256 its bytes must have.</summary>
/// <param name="PackagePath">Path inside the package's file tree, e.g. <c>usr/share/games/fortunes/cookie</c>.</param>
/// <param name="Sha256">Lower-case hex SHA-256 of the file as shipped.</param>
public sealed record CorpusFile(string PackagePath, string Sha256)
{
    /// <summary>The file's name in the cache folder (the last path segment).</summary>
    public string FileName => PackagePath[(PackagePath.LastIndexOf('/') + 1)..];
}

/// <summary>
/// A text corpus that a Debian package ships: which package and version to download, which files to take
/// (each checked by SHA-256), its licence, and how the files become one text.
/// </summary>
/// <param name="Name">Cache folder name and identifier, e.g. <c>fortunes</c>.</param>
/// <param name="Title">What the text is, for messages.</param>
/// <param name="DebianPackage">The Debian package that ships the files.</param>
/// <param name="Version">The exact package version whose files the hashes describe.</param>
/// <param name="Licence">The licence, as the package's copyright file states it.</param>
/// <param name="Files">The files, in the order their texts are joined.</param>
/// <param name="ToText">Turns the verified files' bytes (in <paramref name="Files"/> order) into the corpus
/// text.</param>
public sealed record CorpusSpec(string Name, string Title, string DebianPackage, string Version, string Licence,
    IReadOnlyList<CorpusFile> Files, Func<IReadOnlyList<byte[]>, string> ToText);
