using LoRA.Managed.Autograd;
using LoRA.Managed.Nn;
using LoRA.Managed.Optim;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Training;

/// <summary>
/// Optimizer-in-backward for <see cref="Trainer"/> (<see cref="TrainingArguments.OptimizerInBackward"/>; PyTorch's
/// <c>register_post_accumulate_grad_hook</c> recipe): each linear layer's weight and bias are updated as soon as
/// backward has written their gradient, right after the layer's weight-gradient GEMM, while that gradient (and, for
/// all but the first layer, the weight the <c>∂x</c> GEMM just read) is still in the cache. After backward, the
/// parameters no hook updated take the ordinary step. Each parameter's update reads only its own gradient and state,
/// so the order changes no bit: the weights are those of <see cref="Optimizer.StepAndZeroGrad"/>.
/// </summary>
/// <remarks>
/// Only the parameters of <see cref="Linear"/> modules that the model registers once are updated early: a parameter
/// another op reads (a tied embedding, DoRA's weight norm) is left to the step after backward, as is one a module
/// shares. A model whose <c>Forward</c> reads a linear layer's weight outside that layer must not use this.
/// One step at a time: <see cref="Begin"/> before the forward (uses are counted while recording),
/// <see cref="Finish"/> after backward; <see cref="Abandon"/> if the step stops between them. No allocation per step.
/// </remarks>
internal sealed class OptimizerInBackward : GradientReadyHook
{
    private readonly Optimizer _optimizer;
    private readonly Dictionary<Tensor, int> _slot = new(ReferenceEqualityComparer.Instance);
    private readonly int[] _pending;
    private readonly bool[] _done;
    private bool _begun, _active;
    private GradientReadyHook? _outer;

    private OptimizerInBackward(Optimizer optimizer, Module model)
    {
        _optimizer = optimizer;
        _pending = new int[optimizer.Parameters.Count];
        _done = new bool[optimizer.Parameters.Count];
        var registered = new Dictionary<Parameter, int>(ReferenceEqualityComparer.Instance);
        foreach (Parameter p in model.Parameters()) registered[p] = registered.GetValueOrDefault(p) + 1;
        var linears = new Dictionary<Module, int>(ReferenceEqualityComparer.Instance);
        foreach (var (_, m) in model.NamedModules()) linears[m] = linears.GetValueOrDefault(m) + 1;
        var index = new Dictionary<Parameter, int>(ReferenceEqualityComparer.Instance);
        for (int i = 0; i < optimizer.Parameters.Count; i++) index.TryAdd(optimizer.Parameters[i], i);
        foreach (var (module, count) in linears)
        {
            if (count != 1 || module is not Linear { IsQuantized: false } linear) continue;
            foreach (Parameter? p in new[] { linear.Weight, linear.Bias })
                if (p is not null && registered.GetValueOrDefault(p) == 1 && index.TryGetValue(p, out int i))
                    _slot[p] = i;
        }
    }

    /// <summary>The hook for <paramref name="optimizer"/> over <paramref name="model"/>, or null when none of its
    /// parameters can be updated early.</summary>
    public static OptimizerInBackward? For(Optimizer optimizer, Module model)
    {
        var hook = new OptimizerInBackward(optimizer, model);
        return hook._slot.Count > 0 ? hook : null;
    }

    /// <summary>How many of the optimiser's parameters are updated inside backward.</summary>
    public int EarlyParameters => _slot.Count;

    /// <summary>Starts a step: from here this thread's linear layers report their parameters' uses.</summary>
    public void Begin()
    {
        Array.Clear(_pending);
        Array.Clear(_done);
        _begun = false;
        _active = true;
        _outer = Install(this);
    }

    /// <inheritdoc />
    public override void Used(Tensor parameter)
    {
        if (_slot.TryGetValue(parameter, out int i)) _pending[i]++;
    }

    /// <inheritdoc />
    public override void Ready(Tensor parameter)
    {
        if (!_slot.TryGetValue(parameter, out int i) || --_pending[i] != 0 || _done[i]) return;
        if (!_begun)
        {
            _optimizer.BeginSplitStep();
            _begun = true;
        }
        _optimizer.UpdateOne(i, zeroGrad: true);
        _done[i] = true;
    }

    /// <summary>Ends the step: updates every parameter backward did not, and leaves every gradient zeroed (as
    /// <see cref="Optimizer.StepAndZeroGrad"/>).</summary>
    public void Finish()
    {
        Uninstall();
        if (!_begun) _optimizer.BeginSplitStep();
        _begun = true;
        for (int i = 0; i < _done.Length; i++)
            if (!_done[i]) _optimizer.UpdateOne(i, zeroGrad: true);
    }

    /// <summary>Stops reporting without finishing the step (the step failed before its update).</summary>
    public void Abandon() => Uninstall();

    private void Uninstall()
    {
        if (!_active) return;
        _active = false;
        Install(_outer);
        _outer = null;
    }
}
