using LoRA.Managed.Tensors;

namespace LoRA.Managed.Autograd;

/// <summary>
/// One recorded operation: it holds what its forward computed from, and a backward rule that
/// <em>accumulates</em> into its inputs' gradients (as micrograd's <c>_backward</c> does).
/// </summary>
public abstract class Op
{
    private Tensor? _output;

    /// <summary>Creates a reusable op record whose output is set by <see cref="SetOutput"/> (see
    /// <see cref="Tape.Record{T}"/>).</summary>
    protected Op() { }

    /// <summary>The op's name, as used in error messages.</summary>
    public abstract string Name { get; }

    /// <summary>The tensor the forward produced.</summary>
    public Tensor Output => _output ?? throw new InvalidOperationException($"{Name}: the op has no output yet.");

    /// <summary>Sets the output; ops are reusable records (see <see cref="TensorArena"/>), so this is not a constructor
    /// argument.</summary>
    protected internal void SetOutput(Tensor output) => _output = output;

    /// <summary>Reads <c>Output.Grad</c> and adds the chain-rule contribution to each input that requires a
    /// gradient.</summary>
    public abstract void Backward();

    /// <summary>The gradient buffer of an input, allocated zeroed on first use; empty when it needs none.</summary>
    protected static Span<float> GradOf(Tensor input) => input.RequiresGrad ? input.EnsureGrad() : Span<float>.Empty;
}
