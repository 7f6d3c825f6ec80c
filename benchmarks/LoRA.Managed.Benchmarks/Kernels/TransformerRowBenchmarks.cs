using System.Runtime.Intrinsics;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace LoRA.Managed.Benchmarks.Kernels;

/// <summary>
/// Question: do the fused AVX-512 row kernels (causal softmax, LayerNorm, GELU with the shared float exp) beat the
/// loops of <see cref="TensorPrimitives"/> calls they replaced? Shapes are lm-demo's step (batch 32, context 64,
/// width 64, 4 heads, MLP width 256), on one thread. Each category's baseline is the former code, kept here.
/// </summary>
[Config(typeof(ShortRunConfig))]
[MemoryDiagnoser]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[CategoriesColumn]
public class TransformerRowBenchmarks
{
    private const int Matrices = 32 * 4, T = 64, Rows = 32 * 64, Width = 64, Hidden = 4 * Width;
    private float[] _scores = [], _p = [], _dp = [], _ds = [];
    private float[] _x = [], _w = [], _b = [], _y = [], _mean = [], _rstd = [], _dy = [], _dx = [], _dw = [], _db = [];
    private float[] _h = [], _gelu = [], _scratch = new float[2 * Width];
    private ComputeThreads.Scope _threads;

    /// <summary>Random inputs; one compute thread.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _threads = ComputeThreads.Use(1);
        var g = new TorchGenerator(5);
        float[] R(int n)
        {
            var a = new float[n];
            g.FillUniform(a, -3f, 3f);
            return a;
        }
        _scores = R(Matrices * T * T); _p = new float[_scores.Length]; _dp = R(_scores.Length);
        _ds = new float[_scores.Length];
        CausalSoftmaxKernel.Forward(_scores, _p, Matrices, T, 0.25f);
        _x = R(Rows * Width); _w = R(Width); _b = R(Width); _y = new float[_x.Length];
        _mean = new float[Rows]; _rstd = new float[Rows]; _dy = R(_x.Length); _dx = new float[_x.Length];
        _dw = new float[Width]; _db = new float[Width];
        LayerNormKernel.Forward(_x, _w, _b, _y, _mean, _rstd, Rows, Width);
        _h = R(Rows * Hidden); _gelu = new float[_h.Length];
    }

    /// <summary>Restores the thread count.</summary>
    [GlobalCleanup]
    public void Cleanup() => _threads.Dispose();

    /// <summary>Former causal softmax: five TensorPrimitives calls per row.</summary>
    [Benchmark(Baseline = true), BenchmarkCategory("CausalSoftmaxForward")]
    public void CausalSoftmaxForwardCalls()
    {
        for (int r = 0; r < Matrices * T; r++)
        {
            int n = r % T + 1;
            ReadOnlySpan<float> xr = _scores.AsSpan(r * T, n);
            Span<float> yr = _p.AsSpan(r * T, n);
            float max = TensorPrimitives.Max(xr);
            TensorPrimitives.Subtract(xr, max, yr);
            TensorPrimitives.Multiply(yr, 0.25f, yr);
            TensorPrimitives.Exp(yr, yr);
            TensorPrimitives.Multiply(yr, 1f / TensorPrimitives.Sum(yr), yr);
            _p.AsSpan(r * T + n, T - n).Clear();
        }
    }

    /// <summary>Fused rows (SoftmaxRow).</summary>
    [Benchmark, BenchmarkCategory("CausalSoftmaxForward")]
    public void CausalSoftmaxForward() => CausalSoftmaxKernel.Forward(_scores, _p, Matrices, T, 0.25f);

    /// <summary>Former backward: a dot, then three calls per row.</summary>
    [Benchmark(Baseline = true), BenchmarkCategory("CausalSoftmaxBackward")]
    public void CausalSoftmaxBackwardCalls()
    {
        Span<float> tmp = stackalloc float[T];
        for (int r = 0; r < Matrices * T; r++)
        {
            int n = r % T + 1;
            float dot = TensorPrimitives.Dot(_p.AsSpan(r * T, n), _dp.AsSpan(r * T, n));
            Span<float> ts = tmp.Slice(0, n);
            TensorPrimitives.Subtract(_dp.AsSpan(r * T, n), dot, ts);
            TensorPrimitives.Multiply(ts, 0.25f, ts);
            TensorPrimitives.Multiply(ts, _p.AsSpan(r * T, n), _ds.AsSpan(r * T, n));
            _ds.AsSpan(r * T + n, T - n).Clear();
        }
    }

    /// <summary>Fused rows, gradient written.</summary>
    [Benchmark, BenchmarkCategory("CausalSoftmaxBackward")]
    public void CausalSoftmaxBackward() => CausalSoftmaxKernel.Backward(_p, _dp, _ds, Matrices, T, 0.25f, true);

    /// <summary>Former LayerNorm forward: six calls per row.</summary>
    [Benchmark(Baseline = true), BenchmarkCategory("LayerNormForward")]
    public void LayerNormForwardCalls()
    {
        for (int r = 0; r < Rows; r++)
        {
            ReadOnlySpan<float> xr = _x.AsSpan(r * Width, Width);
            Span<float> yr = _y.AsSpan(r * Width, Width);
            float m = TensorPrimitives.Sum(xr) / Width;
            TensorPrimitives.Subtract(xr, m, yr);
            float s = 1f / MathF.Sqrt(TensorPrimitives.SumOfSquares(yr) / Width + 1e-5f);
            TensorPrimitives.Multiply(yr, s, yr);
            TensorPrimitives.FusedMultiplyAdd(yr, _w, _b, yr);
            _mean[r] = m; _rstd[r] = s;
        }
    }

    /// <summary>Fused rows (LayerNormRow).</summary>
    [Benchmark, BenchmarkCategory("LayerNormForward")]
    public void LayerNormForward() => LayerNormKernel.Forward(_x, _w, _b, _y, _mean, _rstd, Rows, Width);

    /// <summary>Former LayerNorm backward: eleven calls per row.</summary>
    [Benchmark(Baseline = true), BenchmarkCategory("LayerNormBackward")]
    public void LayerNormBackwardCalls()
    {
        Span<float> xhat = stackalloc float[Width], g = stackalloc float[Width];
        for (int r = 0; r < Rows; r++)
        {
            ReadOnlySpan<float> xr = _x.AsSpan(r * Width, Width), dyr = _dy.AsSpan(r * Width, Width);
            Span<float> dxr = _dx.AsSpan(r * Width, Width);
            TensorPrimitives.Subtract(xr, _mean[r], xhat);
            TensorPrimitives.Multiply(xhat, _rstd[r], xhat);
            TensorPrimitives.Add(_db, dyr, _db);
            TensorPrimitives.FusedMultiplyAdd(dyr, xhat, _dw, _dw);
            TensorPrimitives.Multiply(dyr, _w, g);
            float meanG = TensorPrimitives.Sum(g) / Width, meanGx = TensorPrimitives.Dot(g, xhat) / Width;
            TensorPrimitives.Subtract(g, meanG, g);
            TensorPrimitives.FusedMultiplyAdd(xhat, -meanGx, g, g);
            TensorPrimitives.FusedMultiplyAdd(g, _rstd[r], dxr, dxr);
        }
    }

    /// <summary>Fused rows.</summary>
    [Benchmark, BenchmarkCategory("LayerNormBackward")]
    public void LayerNormBackward() =>
        LayerNormKernel.Backward(_x, _w, _mean, _rstd, _dy, _dx, _dw, _db, Rows, Width, _scratch);

    /// <summary>GELU with the runtime's vector exp (which widens to double), as before.</summary>
    [Benchmark(Baseline = true), BenchmarkCategory("GeluForward")]
    public unsafe void GeluForwardRuntimeExp()
    {
        fixed (float* px = _h, py = _gelu)
            for (int i = 0; i < _h.Length; i += 16)
            {
                Vector512<float> v = Vector512.Load(px + i);
                Vector512<float> twoU = Vector512.Create(2f * GeluKernel.SqrtTwoOverPi) * v
                    * Vector512.FusedMultiplyAdd(Vector512.Create(GeluKernel.Cubic), v * v, Vector512<float>.One);
                (v / (Vector512<float>.One + Vector512.Exp(-twoU))).Store(py + i);
            }
    }

    /// <summary>GELU with FastExp.</summary>
    [Benchmark, BenchmarkCategory("GeluForward")]
    public void GeluForward() => GeluKernel.Forward(_h, _gelu);
}
