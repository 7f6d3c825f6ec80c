using LoRA.Managed.Autograd;
using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Nn;

/// <summary>
/// A frozen fully connected layer, <c>y = x·Wᵀ + b</c>, whose W is kept in a <see cref="BaseDType"/>
/// (bfloat16, half, int8 per output row, or NF4 with double-quantised block scales): the base layer of QLoRA
/// (Dettmers et al. 2023). W has no gradient; b stays a float32 <see cref="Parameter"/> (frozen or not, as the
/// caller sets it), as PEFT's <c>prepare_model_for_kbit_training</c> leaves biases.
/// </summary>
/// <remarks>
/// W is always stored <c>[out, in]</c>, so int8's scales are per output feature even for GPT-2's Conv1D, whose
/// file keeps <c>[in, out]</c>: <see cref="FromLinear"/> transposes once while quantising.
/// </remarks>
public sealed class QuantizedLinear : Module
{
    private QuantizedLinear(QuantizedMatrix weight, Parameter? bias)
    {
        Weight = weight;
        if (bias is not null) Bias = RegisterParameter("bias", bias);
    }

    /// <summary>Quantises <paramref name="linear"/>'s weight to <paramref name="dtype"/>, sharing its bias
    /// parameter.</summary>
    public static QuantizedLinear FromLinear(Linear linear, BaseDType dtype)
    {
        ArgumentNullException.ThrowIfNull(linear);
        return new QuantizedLinear(Quantize(linear.Weight.Data, linear.OutFeatures, linear.InFeatures,
            linear.FanInFanOut, dtype), linear.Bias);
    }

    /// <summary>A weight stored <c>[out, in]</c>, or <c>[in, out]</c> when <paramref name="fanInFanOut"/>, quantised
    /// as <c>[out, in]</c>.</summary>
    internal static QuantizedMatrix Quantize(ReadOnlySpan<float> w, int outF, int inF, bool fanInFanOut,
        BaseDType dtype)
    {
        if (!fanInFanOut) return QuantizedMatrix.Quantize(w, outF, inF, dtype);
        // The transpose lives outside the GC heap and is freed at once: a model quantised on load goes through dozens
        // of these, which should leave neither garbage nor a pooled 7 MB array resident for the rest of the run.
        unsafe
        {
            float* p = (float*)System.Runtime.InteropServices.NativeMemory.Alloc((nuint)w.Length, sizeof(float));
            try
            {
                var t = new Span<float>(p, w.Length);
                for (int i = 0; i < inF; i++)
                    for (int o = 0; o < outF; o++) t[o * inF + i] = w[i * outF + o];
                return QuantizedMatrix.Quantize(t, outF, inF, dtype);
            }
            finally
            {
                System.Runtime.InteropServices.NativeMemory.Free(p);
            }
        }
    }

    /// <summary>Wraps an already quantised <c>[out, in]</c> weight and an optional bias of <c>[out]</c>.</summary>
    public static QuantizedLinear FromQuantized(QuantizedMatrix weight, Parameter? bias)
    {
        ArgumentNullException.ThrowIfNull(weight);
        if (bias is not null && (bias.Rank != 1 || bias.Count != weight.Rows))
            throw new ArgumentException($"QuantizedLinear: bias {Shapes.Format(bias.Shape)} does not match the "
                + $"weight [{weight.Rows}, {weight.Columns}].");
        return new QuantizedLinear(weight, bias);
    }

    /// <summary>The frozen weight, <c>[out, in]</c>.</summary>
    public QuantizedMatrix Weight { get; }

    /// <summary>b, (out), or null without bias.</summary>
    public Parameter? Bias { get; }

    /// <summary>Input features.</summary>
    public int InFeatures => Weight.Columns;

    /// <summary>Output features.</summary>
    public int OutFeatures => Weight.Rows;

    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => Functional.QuantizedLinear(input, Weight, Bias);

    /// <summary>The weight in float32, <c>[out, in]</c> (a full copy: for merging or checks, not the hot
    /// path).</summary>
    public Tensor DequantizedWeight() => new(QuantReference.Dequantize(Weight), OutFeatures, InFeatures);

    /// <inheritdoc />
    public override string ToString() =>
        $"QuantizedLinear(in_features={InFeatures}, out_features={OutFeatures}, bias={Bias is not null}, "
        + $"dtype={Weight.DType})";
}
