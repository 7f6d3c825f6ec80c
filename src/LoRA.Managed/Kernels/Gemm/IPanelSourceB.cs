namespace LoRA.Managed.Kernels;

/// <summary>
/// Where <see cref="Gemm"/>'s five loops get their packed panels of op(B) from: the seam that lets a B which is not a
/// float matrix (a quantised frozen weight, <see cref="QuantizedPanels"/>) be expanded straight into the micro-kernel's
/// layout while it is packed, with the loops, the micro-kernels and the order of every sum unchanged.
/// </summary>
/// <remarks>Implemented by structs, so the driver is compiled once per source and the call is direct.</remarks>
internal unsafe interface IPanelSourceB
{
    /// <summary>
    /// Writes op(B)[pc..pc+kc, jc..jc+nc] as ⌈nc/nr⌉ panels, <c>dst[jr·kc + p·nr + j]</c>, the columns past nc of
    /// the last panel zero (the layout of <see cref="Packing.PackB"/>).
    /// </summary>
    void Pack(int pc, int jc, int kc, int nc, int nr, float* dst);
}

/// <summary>op(B) of a row-major float matrix (stored k×n, or n×k when <paramref name="transB"/>): the ordinary
/// GEMM's source.</summary>
internal readonly unsafe struct FloatPanels(bool transB, float* b, int ldb) : IPanelSourceB
{
    public void Pack(int pc, int jc, int kc, int nc, int nr, float* dst) =>
        Packing.PackB(transB, b, ldb, pc, jc, kc, nc, nr, dst);
}
