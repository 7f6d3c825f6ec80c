using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Optim;

/// <summary>The base of the optimisers: a fixed list of parameters, a learning rate, <see cref="Step"/>.</summary>
public abstract class Optimizer
{
    /// <summary>Takes the parameters to update (frozen ones are skipped at each step, as are those without a
    /// gradient).</summary>
    protected Optimizer(IEnumerable<Parameter> parameters, double learningRate)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (!(learningRate >= 0) || double.IsInfinity(learningRate))
            throw new ArgumentOutOfRangeException(nameof(learningRate), learningRate,
                "Optimizer: the learning rate must be a finite number ≥ 0.");
        Parameters = parameters.ToArray();
        if (Parameters.Count == 0) throw new ArgumentException("Optimizer: got an empty parameter list.");
        // A parameter listed twice would take two steps per Step (PyTorch warns of duplicate parameters in a group
        // and refuses them across groups); a list built by hand, e.g. a tied weight added once per module, does this.
        var seen = new Dictionary<Parameter, int>(ReferenceEqualityComparer.Instance);
        for (int i = 0; i < Parameters.Count; i++)
        {
            ArgumentNullException.ThrowIfNull(Parameters[i], $"{nameof(parameters)}[{i}]");
            if (!seen.TryAdd(Parameters[i], i))
                throw new ArgumentException($"Optimizer: parameters {seen[Parameters[i]]} and {i} are the same " +
                    $"tensor {Shapes.Format(Parameters[i].Shape)}; list each parameter once (a tied weight too).",
                    nameof(parameters));
        }
        LearningRate = learningRate;
    }

    /// <summary>The parameters this optimiser updates.</summary>
    public IReadOnlyList<Parameter> Parameters { get; }

    /// <summary>The learning rate used by the next <see cref="Step"/> (a schedule sets it before each step).</summary>
    public double LearningRate { get; set; }

    /// <summary>Number of steps taken.</summary>
    public int StepCount { get; protected set; }

    /// <summary>Restores the step counter (for checkpoints: Adam's bias correction and the schedule read it).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="steps"/> is negative.</exception>
    public void RestoreStepCount(int steps) => StepCount = steps >= 0 ? steps
        : throw new ArgumentOutOfRangeException(nameof(steps), steps, "Optimizer: a step count must be ≥ 0.");

    /// <summary>Updates every parameter that requires and has a gradient (<c>optimizer.step()</c>).</summary>
    public void Step() => Update(zeroGrad: false);

    /// <summary>
    /// <see cref="Step"/> then <see cref="ZeroGrad"/>. Zeroing only marks each gradient
    /// (<see cref="Tensors.Tensor.ZeroGrad"/>): the next backward's first write into a weight's gradient overwrites it,
    /// so a training loop makes no pass over the parameters' memory just to zero it.
    /// </summary>
    public void StepAndZeroGrad() => Update(zeroGrad: true);

    /// <summary>The update; with <paramref name="zeroGrad"/> each gradient read is left zeroed.</summary>
    protected abstract void Update(bool zeroGrad);

    /// <summary>Zeroes the gradients of the parameters.</summary>
    public void ZeroGrad()
    {
        // indexed: no enumerator allocation per step
        for (int i = 0; i < Parameters.Count; i++) Parameters[i].ZeroGrad();
    }

    /// <summary>True when a parameter takes part in this step.</summary>
    protected static bool Active(Parameter p) => p.RequiresGrad && p.HasGrad;
}
