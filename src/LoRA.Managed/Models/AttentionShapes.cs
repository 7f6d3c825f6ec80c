namespace LoRA.Managed.Models;

/// <summary>
/// The shapes one attention forward reshapes through for a (batch, time): (B, T, H, D), (B, T, H_kv, D),
/// (B, T, H·D) and (B, T, H_kv·D). Kept by the layer and rebuilt only when (batch, time) changes, so a training step
/// or a decode step allocates none; replaced, never mutated, so another thread's forward never sees a half-written
/// one.
/// </summary>
internal sealed class AttentionShapes
{
    private AttentionShapes(int batch, int time, int heads, int kvHeads, int headDim)
    {
        Batch = batch;
        Time = time;
        Heads = [batch, time, heads, headDim];
        KvHeads = [batch, time, kvHeads, headDim];
        Merged = [batch, time, heads * headDim];
        KvMerged = [batch, time, kvHeads * headDim];
    }

    public int Batch { get; }
    public int Time { get; }
    public int[] Heads { get; }
    public int[] KvHeads { get; }
    public int[] Merged { get; }
    public int[] KvMerged { get; }

    /// <summary><paramref name="cached"/> when it is for this (batch, time), else new shapes (stored back by the
    /// caller).</summary>
    public static AttentionShapes For(ref AttentionShapes? cached, int batch, int time, int heads, int kvHeads,
        int headDim)
    {
        AttentionShapes? c = cached;
        if (c is not null && c.Batch == batch && c.Time == time) return c;
        return cached = new AttentionShapes(batch, time, heads, kvHeads, headDim);
    }
}
