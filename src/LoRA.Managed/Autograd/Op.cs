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

    /// <summary>
    /// The gradient buffers of a product's two inputs for GEMMs that write or add into them: each array (null when that
    /// input needs none) with its β, 0 when the gradient is logically zero so the GEMM writes it instead of adding to
    /// zeros (<see cref="Tensor.GradBeta"/>). When <paramref name="a"/> and <paramref name="b"/> are one tensor, b's β
    /// is 1: its GEMM adds to what a's GEMM of the same slice has just written.
    /// </summary>
    internal static (float[]? Da, float BetaA, float[]? Db, float BetaB) GradBetas(Tensor a, Tensor b)
    {
        float[]? da = null, db = null;
        float betaA = 1f, betaB = 1f;
        if (a.RequiresGrad) betaA = a.GradBeta(out da);
        if (b.RequiresGrad) betaB = b.GradBeta(out db);
        return (da, betaA, db, betaB);
    }
}
