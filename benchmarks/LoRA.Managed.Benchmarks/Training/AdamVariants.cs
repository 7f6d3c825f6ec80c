using System.Diagnostics;
using System.Runtime.Intrinsics;
using System.Text;
using LoRA.Managed.Kernels;

namespace LoRA.Managed.Benchmarks.Training;

/// <summary>Adam loop variants on L2-resident state: which part of the pass bounds it.</summary>
public static unsafe class AdamVariants
{
    /// <summary>ns per 1,000 elements of each variant.</summary>
    public static string Table()
    {
        var sb = new StringBuilder();
        int n = 16384;
        var p = new float[n]; var g = new float[n]; var m = new float[n]; var v = new float[n];
        var r = new Random(1);
        for (int i = 0; i < n; i++) { p[i] = (float)r.NextDouble() - 0.5f; g[i] = (float)r.NextDouble() - 0.5f; }
        var best = new double[7];
        Array.Fill(best, double.MaxValue);
        using var one = ComputeThreads.Use(1);
        for (int rep = 0; rep < 400; rep++)
            for (int k = 0; k < 7; k++)
            {
                long t0 = Stopwatch.GetTimestamp();
                fixed (float* pp = p, pg = g, pm = m, pv = v)
                    for (int it = 0; it < 20; it++)
                        switch (k)
                        {
                            case 0:
                                AdamUpdate.Step(p, g, m, v, 1e-3f, 0.1f, 0.999f, 0.001f, 0.5f, 1e-8f, 0f, 1f);
                                break;
                            case 1: Plain(pp, pg, pm, pv, n, 0); break;
                            case 2: Plain(pp, pg, pm, pv, n, 1); break;
                            case 3: Plain(pp, pg, pm, pv, n, 2); break;
                            case 4: Plain(pp, pg, pm, pv, n, 3); break;
                            case 5: Plain(pp, pg, pm, pv, n, 4); break;
                            case 6: Old(pp, pg, pm, pv, n); break;
                        }
                best[k] = Math.Min(best[k], Stopwatch.GetElapsedTime(t0).TotalNanoseconds / 20 / n * 1000);
            }
        string[] names = { "library", "no subnormal test, 2 div + sqrt", "no subnormal, 1 div (mul by 1/c)",
            "no subnormal, 0 div (mul, mul)", "no subnormal, no sqrt, 1 div", "no subnormal, Markstein for /c",
            "before (lane test on every vector)" };
        for (int k = 0; k < 7; k++) sb.AppendLine($"{names[k]}: {best[k]:F0} ns per 1,000");
        return sb.ToString();
    }

    private static void Plain(float* param, float* grad, float* m, float* v, int n, int mode)
    {
        var vomb1 = Vector512.Create(0.1f); var vb2 = Vector512.Create(0.999f); var vomb2 = Vector512.Create(0.001f);
        var vstep = Vector512.Create(1e-3f); var vbc2 = Vector512.Create(0.5f); var vrc2 = Vector512.Create(2f);
        var veps = Vector512.Create(1e-8f); var vl2 = Vector512.Create(0f); var vdec = Vector512.Create(1f);
        for (int i = 0; i <= n - 16; i += 16)
        {
            var p = Vector512.Load(param + i) * vdec;
            var g = Vector512.Load(grad + i) + vl2 * Vector512.Load(param + i);
            var m0 = Vector512.Load(m + i);
            var mi = m0 + vomb1 * (g - m0);
            var vi = vb2 * Vector512.Load(v + i) + vomb2 * g * g;
            Vector512<float> denom;
            if (mode == 0) denom = Vector512.Sqrt(vi) / vbc2 + veps;
            else if (mode == 3) denom = vi / vbc2 + veps;
            else if (mode == 4)
            {
                var x = Vector512.Sqrt(vi);
                var q = x * vrc2;
                var res = Vector512.FusedMultiplyAdd(-q, vbc2, x);
                denom = Vector512.ConditionalSelect(Vector512.Equals(res, res),
                    Vector512.FusedMultiplyAdd(res, vrc2, q), q) + veps;
            }
            else denom = Vector512.Sqrt(vi) * vrc2 + veps;
            if (mode == 2) p -= vstep * (mi * denom);
            else p -= vstep * (mi / denom);
            mi.Store(m + i); vi.Store(v + i); p.Store(param + i);
        }
    }

    // The pass as it was: the subnormal lane test on every vector.
    private static void Old(float* param, float* grad, float* m, float* v, int n)
    {
        float stepSize = 1e-3f, omb1 = 0.1f, eps = 1e-8f;
        var vomb1 = Vector512.Create(omb1); var vb2 = Vector512.Create(0.999f); var vomb2 = Vector512.Create(0.001f);
        var vstep = Vector512.Create(stepSize); var vbc2 = Vector512.Create(0.5f);
        var veps = Vector512.Create(eps); var vl2 = Vector512.Create(0f); var vdec = Vector512.Create(1f);
        var vThreshold = Vector512.Create(SubnormalMoments.Threshold(stepSize, eps, omb1));
        var vomb1Double = Vector512.Create((double)omb1);
        for (int i = 0; i <= n - 16; i += 16)
        {
            var p = Vector512.Load(param + i) * vdec;
            var g = Vector512.Load(grad + i) + vl2 * Vector512.Load(param + i);
            var m0 = Vector512.Load(m + i);
            var decaying = SubnormalMoments.Lanes(m0, g, p, vThreshold);
            bool anyDecaying = decaying != Vector512<int>.Zero;
            Vector512<float> mDecayed = default;
            if (anyDecaying)
            {
                mDecayed = SubnormalMoments.Decay(m0, vomb1Double);
                m0 = Vector512.ConditionalSelect(decaying.AsSingle(), Vector512<float>.Zero, m0);
            }
            var mi = m0 + vomb1 * (g - m0);
            var vi = vb2 * Vector512.Load(v + i) + vomb2 * g * g;
            var denom = Vector512.Sqrt(vi) / vbc2 + veps;
            p -= vstep * (mi / denom);
            if (anyDecaying) mi = Vector512.ConditionalSelect(decaying.AsSingle(), mDecayed, mi);
            mi.Store(m + i); vi.Store(v + i); p.Store(param + i);
        }
    }
}
