using LoRA.Managed.Autograd;
using LoRA.Managed.Kernels;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Nn;

/// <summary>
/// A fully connected layer, <c>y = x·Wᵀ + b</c>, as <c>torch.nn.Linear</c>: W is (out, in), b is (out).
/// Initialised as PyTorch does: W by Kaiming-uniform with a = √5, which is uniform in ±1/√in, then b
/// uniform in ±1/√in, drawn in that order, so a <see cref="TorchGenerator"/> seeded like
/// <c>torch.manual_seed</c> reproduces PyTorch's initial weights.
/// </summary>
/// <remarks>
/// <see cref="Empty"/> builds zero weights to be loaded into, optionally in GPT-2's <c>Conv1D</c> layout
/// (<see cref="FanInFanOut"/>: W stored (in, out), <c>y = x·W + b</c>), which is the same map with the weight
/// transposed; keeping the file's layout lets the state_dict round-trip to Hugging Face unchanged.
/// </remarks>
public sealed class Linear : Module, IQuantizableWeight
{
    /// <summary>Creates a layer with PyTorch's default initialisation from <paramref name="generator"/>.</summary>
    public Linear(int inFeatures, int outFeatures, TorchGenerator generator, bool bias = true)
    {
        ArgumentNullException.ThrowIfNull(generator);
        if (inFeatures <= 0 || outFeatures <= 0)
            throw new ArgumentOutOfRangeException(nameof(inFeatures),
                $"Linear: features must be positive, got in={inFeatures}, out={outFeatures}.");
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        Weight = RegisterParameter("weight", new Parameter(outFeatures, inFeatures));
        float bound = 1f / MathF.Sqrt(inFeatures);
        generator.FillUniform(Weight.Data, -bound, bound);
        if (bias)
        {
            Bias = RegisterParameter("bias", new Parameter(outFeatures));
            generator.FillUniform(Bias.Data, -bound, bound);
        }
    }

    private Linear(int inFeatures, int outFeatures, bool bias, bool fanInFanOut)
    {
        if (inFeatures <= 0 || outFeatures <= 0)
            throw new ArgumentOutOfRangeException(nameof(inFeatures),
                $"Linear: features must be positive, got in={inFeatures}, out={outFeatures}.");
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        FanInFanOut = fanInFanOut;
        Weight = RegisterParameter("weight", fanInFanOut ? new Parameter(inFeatures, outFeatures)
            : new Parameter(outFeatures, inFeatures));
        if (bias) Bias = RegisterParameter("bias", new Parameter(outFeatures));
    }

    /// <summary>
    /// A layer with zero weight and bias, for weights loaded from a file; with <paramref name="fanInFanOut"/> the
    /// weight is (in, out) as in GPT-2's <c>Conv1D</c> (PEFT's <c>fan_in_fan_out</c>).
    /// </summary>
    public static Linear Empty(int inFeatures, int outFeatures, bool bias = true, bool fanInFanOut = false) =>
        new(inFeatures, outFeatures, bias, fanInFanOut);

    /// <summary>True when <see cref="Weight"/> is stored (in, out), GPT-2's <c>Conv1D</c> layout.</summary>
    public bool FanInFanOut { get; }

    /// <summary>Input features.</summary>
    public int InFeatures { get; }

    /// <summary>Output features.</summary>
    public int OutFeatures { get; }

    /// <summary>W, (out, in); (in, out) when <see cref="FanInFanOut"/>; an empty tensor once
    /// <see cref="QuantizeWeight(BaseDType)"/> moved it into <see cref="QuantizedWeight"/>.</summary>
    public Parameter Weight { get; private set; }

    /// <summary>The frozen weight in quantised storage, <c>[out, in]</c> whatever the file's layout, or null while
    /// <see cref="Weight"/> holds it in float32.</summary>
    public QuantizedMatrix? QuantizedWeight { get; private set; }

    /// <summary>True once <see cref="QuantizeWeight(BaseDType)"/> has run: the weight is frozen and not a
    /// parameter.</summary>
    public bool IsQuantized => QuantizedWeight is not null;

    /// <summary>
    /// Moves W into <paramref name="dtype"/> storage (QLoRA's frozen base; the forward and the input gradient expand it
    /// inside the GEMM, <see cref="Kernels.QuantizedGemm"/>): the float32 parameter is dropped from the module's
    /// <c>state_dict</c> and <see cref="Weight"/> becomes empty, so its memory can be reclaimed; the bias stays a
    /// float32 parameter. Irreversible.
    /// </summary>
    /// <exception cref="InvalidOperationException">Already quantised.</exception>
    public void QuantizeWeight(BaseDType dtype) => QuantizeWeight(dtype, Weight.Data);

    /// <summary>As <see cref="QuantizeWeight(BaseDType)"/> from <paramref name="weight"/>, laid out as
    /// <see cref="Weight"/> is (how a loader quantises straight from the file without filling
    /// <see cref="Weight"/>).</summary>
    public void QuantizeWeight(BaseDType dtype, ReadOnlySpan<float> weight)
    {
        if (IsQuantized)
            throw new InvalidOperationException($"{this}: the weight is already quantised ({QuantizedWeight!.DType}).");
        if (weight.Length != Weight.Count)
            throw new ArgumentException($"{this}: {weight.Length} values for a weight of {Weight.Count}.");
        Install(Quantize(weight, OutFeatures, InFeatures, FanInFanOut, dtype));
    }

    /// <summary>A weight stored <c>[out, in]</c>, or <c>[in, out]</c> when <paramref name="fanInFanOut"/>, quantised
    /// as <c>[out, in]</c>.</summary>
    private static QuantizedMatrix Quantize(ReadOnlySpan<float> w, int outF, int inF, bool fanInFanOut,
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

    /// <inheritdoc />
    public (int Rows, int Columns) QuantizedShape => (OutFeatures, InFeatures);

    /// <inheritdoc />
    public void UseQuantizedWeight(QuantizedMatrix weight)
    {
        ArgumentNullException.ThrowIfNull(weight);
        if (IsQuantized)
            throw new InvalidOperationException($"{this}: the weight is already quantised ({QuantizedWeight!.DType}).");
        if ((weight.Rows, weight.Columns) != QuantizedShape)
            throw new ArgumentException($"{this}: a quantised weight of [{weight.Rows}, {weight.Columns}] for "
                + $"[{OutFeatures}, {InFeatures}].");
        Install(weight);
    }

    private void Install(QuantizedMatrix weight)
    {
        QuantizedWeight = weight;
        RemoveParameter("weight");
        Weight = new Parameter(0) { RequiresGrad = false };
    }

    /// <summary>b, (out), or null without bias.</summary>
    public Parameter? Bias { get; }

    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => QuantizedWeight is { } q
        ? Functional.QuantizedLinear(input, q, Bias)
        : Functional.Linear(input, Weight, Bias, FanInFanOut);

    /// <summary><c>ReLU(Forward(input))</c>, fused into one op for a float weight
    /// (<see cref="Functional.LinearRelu"/>).</summary>
    internal Tensor ForwardRelu(Tensor input) => QuantizedWeight is null
        ? Functional.LinearRelu(input, Weight, Bias, FanInFanOut)
        : Functional.Relu(Forward(input));

    /// <inheritdoc />
    public override string ToString() => IsQuantized
        ? $"Linear(in_features={InFeatures}, out_features={OutFeatures}, bias={Bias is not null}, " +
        $"dtype={QuantizedWeight!.DType})"
        : FanInFanOut
        ? $"Conv1D(nf={OutFeatures}, nx={InFeatures})"
        : $"Linear(in_features={InFeatures}, out_features={OutFeatures}, bias={Bias is not null})";
}
