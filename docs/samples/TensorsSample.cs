using LoRA.Managed.Autograd;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Samples;

/// <summary>Chapter 1: a tensor is a shape over one contiguous row-major float[]; ops read and write spans.</summary>
public static class TensorsSample
{
    /// <summary>Prints how a (2, 3) tensor is laid out and how a batch row is a slice, not a copy.</summary>
    public static void Run(TextWriter o)
    {
        // region: layout
        var x = new Tensor(new float[] { 1, 2, 3, 4, 5, 6 }, 2, 3);
        Span<float> row1 = x.Data.Slice(1 * 3, 3);   // row i of a (rows, cols) tensor starts at i·cols
        row1[0] = 40;                                  // writes through to the tensor: no copy was made
        o.WriteLine($"shape {Shapes.Format(x.Shape)}, x[1,0] = {x[1, 0]}");
        // endregion

        // region: linear
        var w = new Tensor(new float[] { 1, 0, 0, 0, 1, 0 }, 2, 3);  // (out=2, in=3): keeps features 0 and 1
        Tensor y = Functional.Linear(x, w);                          // y = x·Wᵀ, a GEMM with transB = true
        o.WriteLine($"y = [[{y[0, 0]}, {y[0, 1]}], [{y[1, 0]}, {y[1, 1]}]]");
        // endregion
    }
}
