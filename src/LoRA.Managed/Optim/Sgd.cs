using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using LoRA.Managed.Nn;

namespace LoRA.Managed.Optim;

/// <summary>
/// <c>torch.optim.SGD</c> with momentum and L2 weight decay (no dampening, no Nesterov):
/// <c>g ← g + λθ; b ← μb + g (b = g at the first step); θ ← θ − lr·b</c>.
/// </summary>
public sealed class Sgd : Optimizer
{
    private readonly float[]?[] _buf;

    /// <summary>Creates the optimiser.</summary>
    public Sgd(IEnumerable<Parameter> parameters, double learningRate, double momentum = 0, double weightDecay = 0)
        : base(parameters, learningRate)
    {
        if (!(momentum >= 0))
            throw new ArgumentOutOfRangeException(nameof(momentum), momentum, "SGD: momentum must be ≥ 0.");
        if (!(weightDecay >= 0))
            throw new ArgumentOutOfRangeException(nameof(weightDecay), weightDecay, "SGD: weight decay must be ≥ 0.");
        Momentum = momentum; WeightDecay = weightDecay;
        _buf = new float[]?[Parameters.Count];
    }

    /// <summary>μ.</summary>
    public double Momentum { get; }
    /// <summary>λ.</summary>
    public double WeightDecay { get; }

    /// <summary>The momentum buffers, one per parameter; null until the parameter's first step with momentum (exposed
    /// for checkpoints).</summary>
    public IReadOnlyList<float[]?> MomentumBuffers => _buf;

    /// <summary>Restores parameter <paramref name="index"/>'s momentum buffer from a checkpoint (null: none
    /// yet).</summary>
    /// <exception cref="ArgumentException">The buffer's length is not the parameter's element count.</exception>
    public void RestoreMomentumBuffer(int index, float[]? buffer)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, _buf.Length);
        if (buffer is null) { _buf[index] = null; return; }
        if (buffer.Length != Parameters[index].Count)
            throw new ArgumentException($"SGD: momentum buffer {index} has {buffer.Length} values but its parameter " +
                $"has {Parameters[index].Count}.", nameof(buffer));
        _buf[index] = (float[])buffer.Clone();
    }

    /// <inheritdoc />
    protected override void Update(bool zeroGrad)
    {
        StepCount++;
        float lr = (float)LearningRate, mu = (float)Momentum, wd = (float)WeightDecay;
        for (int i = 0; i < Parameters.Count; i++)
        {
            Parameter p = Parameters[i];
            if (!Active(p)) continue;
            Span<float> theta = p.Data;
            ReadOnlySpan<float> g = p.Grad;
            float[]? d = null;
            if (wd != 0f)
            {
                d = new float[theta.Length];
                TensorPrimitives.MultiplyAdd(theta, wd, g, d);
                g = d;
            }
            if (mu != 0f)
            {
                if (_buf[i] is null) _buf[i] = g.ToArray();
                else TensorPrimitives.MultiplyAdd(_buf[i], mu, g, _buf[i]); // b = μb + g
                g = _buf[i];
            }
            TensorPrimitives.MultiplyAdd(g, -lr, theta, theta);
            if (zeroGrad) p.ZeroGrad();
        }
    }
}
