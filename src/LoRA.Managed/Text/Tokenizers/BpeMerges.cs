namespace LoRA.Managed.Text.Tokenizers;

/// <summary>
/// The merge table of a BPE model: for a pair of token ids, its rank (its line in the merges list; lower merges
/// first) and the id of the merged token. Keyed by the two ids packed into one <see cref="long"/>, so a lookup in the
/// merge loop hashes one integer instead of building a string.
/// </summary>
internal sealed class BpeMerges
{
    private readonly Dictionary<long, (int Rank, int Merged)> _table;

    public BpeMerges(int capacity) => _table = new Dictionary<long, (int, int)>(capacity);

    /// <summary>Number of rules.</summary>
    public int Count => _table.Count;

    /// <summary>Sets the rule of a pair. A repeated pair keeps its last rank, as HF's <c>collect()</c> into a HashMap
    /// does.</summary>
    public void Set(int left, int right, int rank, int merged) => _table[Key(left, right)] = (rank, merged);

    public bool TryGet(int left, int right, out int rank, out int merged)
    {
        if (_table.TryGetValue(Key(left, right), out var rule))
        {
            (rank, merged) = rule;
            return true;
        }
        (rank, merged) = (0, 0);
        return false;
    }

    private static long Key(int left, int right) => ((long)left << 32) | (uint)right;
}
