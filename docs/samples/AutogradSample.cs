using LoRA.Managed.Autograd;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Samples;

/// <summary>Chapter 3: the tape records ops; backward runs their rules in reverse and accumulates.</summary>
public static class AutogradSample
{
    /// <summary>Computes L = Σ relu(x·wᵀ)·2 and prints dL/dw, then shows accumulation.</summary>
    public static void Run(TextWriter o)
    {
        // region: backward
        var x = new Tensor(new float[] { 1, -2, 3 }, 1, 3);
        var w = new Tensor(new float[] { 0.5f, 0.5f, 0.5f, -1, 0, 1 }, 2, 3) { RequiresGrad = true };
        Tensor h = Functional.Relu(Functional.Linear(x, w));          // h = [1, 2]
        Tensor ones = new Tensor(new float[] { 2, 2 }, 2, 1);
        Tensor loss = Functional.MatMul(h, ones);                       // L = 2·h₀ + 2·h₁ = 6
        o.WriteLine($"tape holds {Tape.Current.Count} ops, L = {loss.Item()}");
        loss.Backward();                                                // ∂L/∂w[j,:] = 2·[h_j > 0]·x
        o.WriteLine($"dL/dw = [{string.Join(", ", w.Grad.ToArray())}]");
        // endregion

        // region: accumulate
        Functional.MatMul(Functional.Relu(Functional.Linear(x, w)), ones).Backward();
        o.WriteLine($"after a second backward: dL/dw[0] = {w.Grad[0]} (accumulated, as in PyTorch)");
        w.ZeroGrad();
        using (Tape.NoGrad()) Functional.Linear(x, w);                  // evaluation: nothing recorded
        o.WriteLine($"under NoGrad the tape holds {Tape.Current.Count} ops");
        // endregion
    }
}
