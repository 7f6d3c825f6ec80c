using LoRA.Managed.Autograd;
using LoRA.Managed.Kernels;
using LoRA.Managed.Models;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Samples.Exercises;

/// <summary>
/// Solutions to the exercises at the end of the chapters, one method each. To try an exercise yourself, replace a
/// method's body with your own and run <c>dotnet run --project docs/samples -- exercises</c>: every solution is
/// checked against the library (<see cref="ExerciseChecks"/>), and the docs tests run the same checks.
/// </summary>
public static class Solutions
{
    /// <summary>Exercise 1.1: the transpose of a (rows, cols) row-major matrix, as a new (cols, rows) array.</summary>
    public static float[] Transpose(ReadOnlySpan<float> x, int rows, int cols)
    {
        var t = new float[x.Length];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++)
                t[j * rows + i] = x[i * cols + j];    // (i, j) is at i·cols + j; in the transpose, at j·rows + i
        return t;
    }

    /// <summary>Exercise 2.1: C = A·B (row-major, A m×k, B k×n) with the naive i-j-k loop and four partial
    /// sums.</summary>
    public static void NaiveFourSums(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c, int m, int n, int k)
    {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                float s0 = 0, s1 = 0, s2 = 0, s3 = 0;   // four independent chains of adds instead of one
                int p = 0;
                for (; p + 4 <= k; p += 4)
                {
                    s0 += a[i * k + p] * b[p * n + j];
                    s1 += a[i * k + p + 1] * b[(p + 1) * n + j];
                    s2 += a[i * k + p + 2] * b[(p + 2) * n + j];
                    s3 += a[i * k + p + 3] * b[(p + 3) * n + j];
                }
                for (; p < k; p++) s0 += a[i * k + p] * b[p * n + j];
                c[i * n + j] = (s0 + s1) + (s2 + s3);
            }
    }

    /// <summary>Exercise 3.1: the backward of y = a ⊙ b (elementwise): returns (da, db) for the upstream dy.</summary>
    public static (float[] Da, float[] Db) MulBackward(ReadOnlySpan<float> a, ReadOnlySpan<float> b,
        ReadOnlySpan<float> dy)
    {
        var da = new float[a.Length];
        var db = new float[b.Length];
        for (int i = 0; i < a.Length; i++)
        {
            da[i] = dy[i] * b[i];   // ∂yᵢ/∂aᵢ = bᵢ
            db[i] = dy[i] * a[i];   // ∂yᵢ/∂bᵢ = aᵢ
        }
        return (da, db);
    }

    /// <summary>Exercise 4.1: log softmax of one row of logits, safe for logits in the thousands.</summary>
    public static float[] LogSoftmaxRow(ReadOnlySpan<float> z)
    {
        float max = float.NegativeInfinity;
        foreach (float v in z) max = MathF.Max(max, v);
        double sum = 0;
        foreach (float v in z) sum += Math.Exp(v - max);        // every exponent ≤ 0: no overflow
        float logSum = (float)Math.Log(sum);
        var y = new float[z.Length];
        for (int i = 0; i < z.Length; i++) y[i] = z[i] - max - logSum;
        return y;
    }

    /// <summary>Exercise 4.2: θ after <paramref name="gradients"/>.Length Adam steps from θ₀ (β₁ 0.9, β₂ 0.999,
    /// ε 1e-8), in double, with the bias corrections.</summary>
    public static double Adam(double theta, ReadOnlySpan<double> gradients, double lr)
    {
        double m = 0, v = 0;
        for (int t = 1; t <= gradients.Length; t++)
        {
            double g = gradients[t - 1];
            m = 0.9 * m + 0.1 * g;
            v = 0.999 * v + 0.001 * g * g;
            double mHat = m / (1 - Math.Pow(0.9, t)), vHat = v / (1 - Math.Pow(0.999, t));
            theta -= lr * mHat / (Math.Sqrt(vHat) + 1e-8);
        }
        return theta;
    }

    /// <summary>
    /// Exercise 5.1: a rank-r LoRA backward by hand with the GEMM of chapter 2, transposes as flags. x (N×in),
    /// A (r×in), B (out×r), dY (N×out), scale s: returns dA (r×in) and dB (out×r).
    /// </summary>
    public static (float[] Da, float[] Db) LoraBackward(float[] x, float[] a, float[] b, float[] dy,
        int n, int inF, int outF, int r, float s)
    {
        var h = new float[n * r];
        Gemm.Multiply(false, true, n, r, inF, 1f, x, inF, a, inF, 0f, h, r);            // h = x·Aᵀ       (N×r)
        var db = new float[outF * r];
        Gemm.Multiply(true, false, outF, r, n, s, dy, outF, h, r, 0f, db, r);          // dB = s·dYᵀ·h   (out×r)
        var dh = new float[n * r];
        Gemm.Multiply(false, false, n, r, outF, s, dy, outF, b, r, 0f, dh, r);         // dh = s·dY·B    (N×r)
        var da = new float[r * inF];
        Gemm.Multiply(true, false, r, inF, n, 1f, dh, r, x, inF, 0f, da, inF);         // dA = dhᵀ·x     (r×in)
        return (da, db);
    }

    /// <summary>Exercise 5.2: the merged weight W + s·B·A (out×in), so one GEMM computes the adapted layer.</summary>
    public static float[] Merge(float[] w, float[] a, float[] b, int inF, int outF, int r, float s)
    {
        var merged = (float[])w.Clone();
        Gemm.Multiply(false, false, outF, inF, r, s, b, r, a, inF, 1f, merged, inF);   // W += s·B·A
        return merged;
    }

    /// <summary>Exercise 9.1: greedy decoding with the KV cache: the prompt once, then one token at a time.</summary>
    public static int[] Greedy(CausalLm model, int[] prompt, int newTokens)
    {
        using var _ = Tape.NoGrad();                                        // inference: record nothing
        KvCache cache = model.NewCache(prompt.Length + newTokens);
        Tensor hidden = model.ForwardCached(prompt, cache);                 // (prompt, C): every prompt position
        var output = new List<int>();
        int c = model.Config.HiddenSize;
        for (int step = 0; step < newTokens; step++)
        {
            var last = new Tensor(hidden.Data.Slice(hidden.Shape[0] * c - c, c).ToArray(), 1, c);
            int next = TokenSampler.ArgMax(model.Head(last).Data);
            output.Add(next);
            hidden = model.ForwardCached([next], cache);                    // one position, against the cache
        }
        return output.ToArray();
    }

    /// <summary>Exercise 9.2: RoPE on one head vector (rotate-half layout) at position p, frequencies ωᵢ.</summary>
    public static float[] Rope(ReadOnlySpan<float> x, int position, ReadOnlySpan<float> inverseFrequencies)
    {
        int half = x.Length / 2;
        var y = new float[x.Length];
        for (int i = 0; i < half; i++)
        {
            float angle = position * inverseFrequencies[i], c = MathF.Cos(angle), s = MathF.Sin(angle);
            y[i] = x[i] * c - x[half + i] * s;
            y[half + i] = x[half + i] * c + x[i] * s;
        }
        return y;
    }

    /// <summary>Exercise 9.3: one NF4 block by hand: scale by the block's absmax, round each value to the nearest of
    /// the 16 levels (ties to the lower level, as a midpoint comparison does), multiply back.</summary>
    public static float[] Nf4RoundTrip(ReadOnlySpan<float> block)
    {
        ReadOnlySpan<float> levels = Kernels.Nf4.Levels;
        float absmax = 0f;
        foreach (float v in block) absmax = MathF.Max(absmax, MathF.Abs(v));
        var y = new float[block.Length];
        for (int i = 0; i < block.Length; i++)
        {
            float u = absmax == 0f ? 0f : block[i] * (1f / absmax);   // bitsandbytes multiplies by the reciprocal
            int best = 0;
            for (int l = 1; l < levels.Length; l++)
                if (u > (levels[l - 1] + levels[l]) / 2f) best = l;   // above the midpoint: the upper level
            y[i] = levels[best] * absmax;
        }
        return y;
    }

    /// <summary>Exercise 6.1: trainable parameters of a rank-r adapter on an in→out linear layer: A is r×in and B is
    /// out×r, so r·(in + out); the blog's rank 4 on the 256→10 layer gives 1,064.</summary>
    public static long LoraParameterCount(int inF, int outF, int r) => (long)r * (inF + outF);

    /// <summary>Exercise 6.2: ‖W − W_r‖_F of the best rank-r approximation from the singular values alone
    /// (Eckart–Young): the square root of the sum of the squares of those left out.</summary>
    public static double TruncationError(ReadOnlySpan<double> singularValues, int r)
    {
        double sum = 0;
        for (int i = r; i < singularValues.Length; i++) sum += singularValues[i] * singularValues[i];
        return Math.Sqrt(sum);
    }

    /// <summary>
    /// Exercise 8.1: write a file so that a crash or an exception never leaves it half-written: write a temporary file
    /// in the same folder (a rename is atomic only within one file system), flush it to the disk, then rename it over
    /// the target; on failure delete the temporary file and leave the target as it was.
    /// </summary>
    public static void AtomicWrite(string path, Action<Stream> write)
    {
        string full = Path.GetFullPath(path);
        string temp = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
            {
                write(file);
                file.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
    }
}

