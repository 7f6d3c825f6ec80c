namespace LoRA.Managed.Text.Tokenizers;

/// <summary>
/// Applies BPE merges to one word's symbols the way Hugging Face <c>tokenizers</c> does (<c>Word::merge_all</c>):
/// a min-heap of candidate pairs ordered by (merge rank, position) pops the best pair, skips it when either symbol
/// has since been merged away, and pushes the new symbol's pairs with its neighbours. The symbols sit in a doubly
/// linked list over reused arrays, so a merge costs O(log n) and allocates nothing.
/// </summary>
internal sealed class BpeMerger
{
    private int[] _ids = new int[64];
    private int[] _prev = new int[64];
    private int[] _next = new int[64];
    private readonly PriorityQueue<int, long> _heap = new();
    private int _count;

    /// <summary>Starts a word with no symbols.</summary>
    public void Reset() => _count = 0;

    /// <summary>Appends a symbol (a token id) to the word.</summary>
    public void Add(int id)
    {
        if (_count == _ids.Length)
        {
            System.Array.Resize(ref _ids, _count * 2);
            System.Array.Resize(ref _prev, _count * 2);
            System.Array.Resize(ref _next, _count * 2);
        }
        _ids[_count] = id;
        _prev[_count] = _count - 1;
        _next[_count] = -1;
        if (_count > 0) _next[_count - 1] = _count;
        _count++;
    }

    /// <summary>Merges until no adjacent pair has a merge rule, then appends the remaining ids to
    /// <paramref name="output"/>.</summary>
    public void MergeInto(BpeMerges merges, List<int> output)
    {
        _heap.Clear();
        for (int i = 0; i + 1 < _count; i++) Push(merges, i);
        while (_heap.TryDequeue(out int pos, out long priority))
        {
            if (_ids[pos] < 0) continue;                 // merged into its left neighbour meanwhile
            int right = _next[pos];
            if (right < 0) continue;
            // Still the pair this entry was pushed for? The rank identifies it (one rank per pair).
            if (!merges.TryGet(_ids[pos], _ids[right], out int rank, out int merged) || rank != (int)(priority >> 32))
                continue;
            _ids[pos] = merged;
            _ids[right] = -1;
            int after = _next[right];
            _next[pos] = after;
            if (after >= 0) _prev[after] = pos;
            if (_prev[pos] >= 0) Push(merges, _prev[pos]);
            if (after >= 0) Push(merges, pos);
        }
        for (int i = 0; i >= 0 && _count > 0; i = _next[i]) output.Add(_ids[i]);
    }

    // Priority (rank
    // << 32) | position: the lowest rank first and, among equal ranks, the leftmost, as HF's Ord for Merge.
    private void Push(BpeMerges merges, int left)
    {
        int right = _next[left];
        if (merges.TryGet(_ids[left], _ids[right], out int rank, out _))
            _heap.Enqueue(left, ((long)rank << 32) | (uint)left);
    }
}
