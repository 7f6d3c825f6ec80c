using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LoRA.Managed.Kernels;

/// <summary>
/// The direct path of <see cref="Gemm"/> for narrow products: at most 16 columns (the classifier's last layer,
/// N = 10), at most 16 rows (its weight gradient, M = 10; LoRA's rank-r factors), or a short shared dimension
/// (the input gradient through that layer, K = 10) when the product is too small to split over threads. The
/// packed path pads such a product to 8×32 tiles and packs operands whose every element is used a few times
/// only; here nothing is packed: A's rows are broadcast straight from memory and op(B)'s rows are read in place
/// when they are contiguous, else from a small zero-padded strip.
/// </summary>
/// <remarks>
/// <para>C is computed in blocks of 16 columns when it has at most 16 (one <see cref="Vector512{T}"/> per row),
/// else of 32 (two per row, see <see cref="NarrowKernels"/>), eight rows at a time (sixteen for one vector per row
/// while sixteen rows remain: <see cref="SixteenRowKernel"/>). A is addressed through a
/// (row stride, column stride) pair and op(B) through a row stride, so one set of tiles serves every transpose.
/// With few columns there is one block and A streams through once; with few rows A is at most 16×k and stays
/// in L1 while the blocks sweep across B.</para>
/// <para>Each element of C is summed exactly as the packed path sums it (FMAs over p in increasing order, C
/// updated after every block of <see cref="Gemm.KC"/>), so the two paths give the same bits for every shape
/// and results never depend on which path or how many threads ran. The loops are compiled fully optimised at
/// once (<see cref="MethodImplOptions.AggressiveOptimization"/>): otherwise they start at tier 0 and, called
/// only a few times per step, could stay there for seconds.</para>
/// </remarks>
[SkipLocalsInit]
internal static unsafe class NarrowGemm
{
    /// <summary>Columns or rows at or under which a product is narrow: one 512-bit vector of floats.</summary>
    public const int Width = 16;

    // A KC×32 strip of op(B) and a KC×12 panel of A, whatever k: both are rebuilt for every block of KC (44 KB per
    // thread).
    [ThreadStatic] private static float[]? t_scratch;

    /// <summary>
    /// True when the shape takes this path: at most 16 columns; at most 16 rows with A under 256 KB (every block
    /// of columns re-reads all of A, which must stay in cache for that to be free); or k at most 16 with fewer
    /// than <see cref="Gemm.ParallelThreshold"/> multiply-adds (one thread would run it anyway, and packing costs
    /// more than it saves there; measurements: docs/07-performance.md, "Decisions in the kernels").
    /// </summary>
    public static bool Applies(int m, int n, int k) =>
        Vector512.IsHardwareAccelerated && Avx512F.IsSupported &&
        (n <= Width || (m <= Width && (long)m * k <= 1 << 16)
            || (k <= Width && (long)m * n * k < Gemm.ParallelThreshold));

    /// <summary>Row-major <c>C = alpha·op(A)·op(B) + beta·C</c> for a shape where <see cref="Applies"/>
    /// holds.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Multiply(bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc)
    {
        const int V = NarrowKernels.V;
        // op(A)[i, p] = a[i·rsA + p·csA]; op(B)[p, j] = b[p·rsB + j·csB].
        long rsA = transA ? 1 : lda, csA = transA ? lda : 1;
        long rsB = transB ? 1 : ldb, csB = transB ? ldb : 1;
        if (GemvKernel.Applies(m, transB))
        {
            GemvKernel.Multiply(n, k, alpha, a, csA, b, ldb, beta, c);   // one row: B read row by row, once
            return;
        }
        int width = n <= V ? V : 2 * V;
        float[] scratch = t_scratch ??= GC.AllocateUninitializedArray<float>(Gemm.KC * (2 * V + 12) + V, pinned: true);
        fixed (float* unaligned = scratch)
        {
            // A 64-byte boundary: an array's data starts 16 bytes into the object, and a vector load that
            // straddles two cache lines costs two.
            float* strip = Gemm.Align64(unaligned), packedA = strip + Gemm.KC * 2 * V;
            int vectorRows = RowVectorRows(m, n);
            if (vectorRows > 0)
            {
                // Rows of C are independent: the row-vectorised tiles take whole 32-row panels and the column
                // tiles below the rest, each element summed the same way by both.
                RowVectorGemm.Multiply(vectorRows, n, k, alpha, a, rsA, csA, b, rsB, csB, beta, c, ldc, strip);
                if (vectorRows == m) return;
                a += vectorRows * rsA;
                c += (long)vectorRows * ldc;
                m -= vectorRows;
            }
            // 9 to 12 rows of C with two vectors per row: one 12-row pass over A packed 12 values per step of p.
            bool twelve = width == 2 * V && m > 8 && m <= 12;
            // The shared dimension in blocks of Gemm.KC, C updated after each (beta, then 1) exactly as the
            // packed path does, so both paths give the same bits for every shape.
            for (int p0 = 0; p0 < k; p0 += Gemm.KC)
            {
                int kc = Math.Min(Gemm.KC, k - p0);
                float betaEff = p0 == 0 ? beta : 1f;
                float* ap = a + p0 * csA;
                // Ten rows of a transposed A are ten contiguous floats per step of p: broadcast in place, as packed.
                bool inPlace = twelve && m == 10 && rsA == 1;
                if (twelve && !inPlace) PackRows(ap, rsA, csA, m, kc, packedA);
                if (!twelve && width == 2 * V && k <= ShortDepthKernel.MaxDepth)
                {
                    ShortDepth(m, n, kc, alpha, ap, rsA, csA, b + p0 * rsB, rsB, csB, betaEff, c, ldc, strip);
                    continue;
                }
                for (int j0 = 0; j0 < n; j0 += width)
                {
                    int w = Math.Min(width, n - j0);
                    float* rowsB = b + j0 * csB + p0 * rsB, cj = c + j0;
                    long strideB = rsB;
                    // op(B)'s rows are read in place when they are contiguous and full width: copying them to the
                    // strip for every block anyway was slower (docs/07-performance.md, "Decisions in the kernels").
                    if (csB != 1 || w < width)
                    {
                        FillStrip(rowsB, rsB, csB, kc, w, width, strip);
                        rowsB = strip;
                        strideB = width;
                    }
                    if (twelve)
                    {
                        if (m <= 10)
                            NarrowKernels.Rows10x32(kc, alpha, inPlace ? ap : packedA, inPlace ? csA : 12, rowsB,
                                strideB, betaEff, cj, ldc, m, w);
                        else NarrowKernels.Rows12x32(kc, alpha, packedA, rowsB, strideB, betaEff, cj, ldc, m, w);
                        continue;
                    }
                    for (int i = 0; i < m; i += 8)
                    {
                        int rows = Math.Min(8, m - i);
                        float* ai = ap + i * rsA, ci = cj + (long)i * ldc;
                        if (width == V)
                        {
                            if (m - i >= 16)
                            {
                                SixteenRowKernel.Rows16x16(kc, alpha, ai, rsA, csA, rowsB, strideB, betaEff, ci, ldc,
                                    w);
                                i += 8;
                            }
                            else if (rows > 4)
                                NarrowKernels.Rows8x16(kc, alpha, ai, rsA, csA, rowsB, strideB, betaEff, ci, ldc,
                                    rows, w);
                            else
                                NarrowKernels.Rows4x16(kc, alpha, ai, rsA, csA, rowsB, strideB, betaEff, ci, ldc,
                                    rows, w);
                        }
                        else
                        {
                            if (rows > 4)
                                NarrowKernels.Rows8x32(kc, alpha, ai, rsA, csA, rowsB, strideB, betaEff, ci, ldc,
                                    rows, w);
                            else
                                NarrowKernels.Rows4x32(kc, alpha, ai, rsA, csA, rowsB, strideB, betaEff, ci, ldc,
                                    rows, w);
                        }
                    }
                }
            }
        }
    }

    /// <summary>
    /// A shallow product (k ≤ <see cref="ShortDepthKernel.MaxDepth"/>) in blocks of 32 columns whose stores to C
    /// start on a 64-byte boundary: when every row of C is aligned alike (ldc a multiple of 16), the first block
    /// takes just the columns before the first boundary. With k = 10 the FMAs are few and the stores of C are
    /// a large part of the time; a vector store that straddles two cache lines costs two (measured in
    /// docs/07-performance.md, "Decisions in the kernels"). The loads of op(B) it moves off alignment happen once per
    /// block.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ShortDepth(int m, int n, int k, float alpha, float* a, long rsA, long csA,
        float* b, long rsB, long csB, float beta, float* c, int ldc, float* strip)
    {
        const int Width = 2 * NarrowKernels.V;
        int lead = 0;
        if (ldc % 16 == 0 && ((nint)c & 3) == 0) lead = (int)((64 - ((nint)c & 63)) & 63) / sizeof(float);
        for (int j0 = 0; j0 < n;)
        {
            int w = Math.Min(j0 == 0 && lead > 0 ? lead : Width, n - j0);
            float* rowsB = b + j0 * csB;
            long strideB = rsB;
            if (csB != 1 || w < Width)
            {
                FillStrip(rowsB, rsB, csB, k, w, Width, strip);
                rowsB = strip;
                strideB = Width;
            }
            ShortDepthKernel.Multiply(k, m, alpha, a, rsA, csA, rowsB, strideB, beta, c + j0, ldc, w);
            j0 += w;
        }
    }

    /// <summary>
    /// How many of the m rows <see cref="RowVectorGemm"/> computes: its whole 32-row panels, none with more than 10
    /// columns: a part-filled panel is slower than the column tiles (measurements: docs/07-performance.md, "Decisions
    /// in the kernels").
    /// </summary>
    private static int RowVectorRows(int m, int n)
    {
        if (n > RowVectorGemm.MaxColumns) return 0;
        return m - m % 32;
    }

    /// <summary>Packs m (at most 12) rows of op(A) as <c>dst[p·12 + i]</c>, rows m..11 zero.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackRows(float* a, long rsA, long csA, int m, int kc, float* dst)
    {
        for (int p = 0; p < kc; p++, dst += 12)
        {
            float* src = a + p * csA;
            int i = 0;
            for (; i < m; i++) dst[i] = src[i * rsA];
            for (; i < 12; i++) dst[i] = 0f;
        }
    }

    /// <summary>
    /// Copies kc rows of a block of op(B) (<c>src[p·rsB + j·csB]</c>, j &lt; w) into <c>dst[p·width + j]</c>, the
    /// columns from w to width zero. A transposed B (csB ≠ 1) is turned round 16×16 at a time in registers
    /// (<see cref="Packing.Transpose16x16(float*, long, int, float*, int)"/>); a strided scalar gather of ten
    /// columns cost about a quarter of the whole 64×256·(10×256)ᵀ product. <see cref="RowVectorGemm"/> packs its
    /// k-major panels of op(A) with it too (rows of op(A) as the columns here, strides swapped).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void FillStrip(float* src, long rsB, long csB, int kc, int w, int width, float* dst)
    {
        if (csB == 1)
        {
            // Masked loads: the lanes past w read as zero and never touch memory past the row's last column.
            var mask0 = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(w)).AsSingle();
            var mask1 = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(w - 16)).AsSingle();
            for (int p = 0; p < kc; p++)
            {
                float* s = src + p * rsB, d = dst + p * width;
                Avx512F.MaskLoad(s, mask0, default).Store(d);
                if (width > 16) Avx512F.MaskLoad(s + 16, mask1, default).Store(d + 16);
            }
            return;
        }
        int p0 = 0;
        for (; p0 + 16 <= kc; p0 += 16)
            for (int h = 0; h < width; h += 16)
            {
                int cols = Math.Min(16, w - h);
                if (cols > 0) Packing.Transpose16x16(src + h * csB + p0, csB, cols, dst + p0 * width + h, width);
                else for (int p = p0; p < p0 + 16; p++) new Span<float>(dst + p * width + h, 16).Clear();
            }
        for (int p = p0; p < kc; p++)
        {
            float* d = dst + p * width;
            int j = 0;
            for (; j < w; j++) d[j] = src[p * rsB + j * csB];
            for (; j < width; j++) d[j] = 0f;
        }
    }
}
