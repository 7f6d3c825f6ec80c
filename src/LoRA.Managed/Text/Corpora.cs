namespace LoRA.Managed.Text;

/// <summary>
/// The two English corpora of the language-model demo, both shipped by Debian packages (fetched at run time into
/// the cache by <see cref="CorpusFetcher"/>, never committed) and clearly different in style.
/// </summary>
public static class Corpora
{
    /// <summary>
    /// Corpus A: eight fortune-cookie files of BSD fortune(6) (quotations, jokes, verse and one-liners; 1.32 MB),
    /// from Debian's <c>fortunes</c> 1:1.99.1-7.3. Licence: BSD (fortune-mod's copyright file, Regents of the
    /// University of California, advertising clause deleted). The <c>definitions</c> file is left out so the two
    /// corpora do not share Bierce-style definitions.
    /// </summary>
    public static CorpusSpec Fortunes { get; } = new(
        "fortunes", "fortune(6) cookie files", "fortunes", "1:1.99.1-7.3",
        "BSD-3-Clause (fortune-mod, Regents of the University of California)",
        new CorpusFile[]
        {
            new("usr/share/games/fortunes/cookie", "5dc97eee96dcc5287c373be629482730d45f77b59da1287933c9c5f482a055eb"),
            new("usr/share/games/fortunes/computers",
                "a86be224d9f733b88eeaf8a46ea0427e05cc69c69edcf5f6db47ddf561ca37fd"),
            new("usr/share/games/fortunes/songs-poems",
                "eb714d297b468da91b6ca32baefb000279a3e3740b09f8a87db24fe58e010b1a"),
            new("usr/share/games/fortunes/people", "2afb4b9f577be114d2dca279bc5590ee8415e1405295d7d7626c888d82f338e8"),
            new("usr/share/games/fortunes/science", "7ab350b142ee6c70c1d8517c5a1b3790c09b190a62859427cad98e6e35a19fcc"),
            new("usr/share/games/fortunes/politics",
                "b56ca45a046edd5c459090a5c6b335332661b436e814b41ac87bb58065ad6131"),
            new("usr/share/games/fortunes/work", "ad8a0e104160e2c4782fa86e143cd60ffab2872985d4293ffd0af6df19dbfa28"),
            new("usr/share/games/fortunes/men-women",
                "8fc4eb68a8d16826372d9bfdc910c8ab917b8aa59e2aac533f3ec2b49a1314ba"),
        },
        CorpusText.Fortunes);

    /// <summary>
    /// Corpus B: Ambrose Bierce, <i>The Devil's Dictionary</i> (1911; satirical definitions and verse; about 380 KB of
    /// text), from Debian's <c>dict-devil</c> 1.0-13.1 (<c>usr/share/dictd/devil.dict.dz</c>). Public domain.
    /// </summary>
    public static CorpusSpec DevilsDictionary { get; } = new(
        "devils-dictionary", "The Devil's Dictionary (Ambrose Bierce)", "dict-devil", "1.0-13.1",
        "Public domain (copyright expired; Debian copyright file)",
        new CorpusFile[] { new("usr/share/dictd/devil.dict.dz",
            "995ca92760d677965cb2780e78b808e982f9d49e8c12d795c1854476bbf13819") },
        files => CorpusText.DictFromMarker(files[0], "_The Devil's Dictionary_ was begun"));
}
