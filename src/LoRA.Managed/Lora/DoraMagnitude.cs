using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Lora;

/// <summary>
/// DoRA's magnitude vector m (one entry per output feature) of one adapter, PEFT's <c>DoraLinearLayer</c>: a module
/// holding the single parameter <c>weight</c>, so its in-memory name is
/// <c>X.lora_magnitude_vector.&lt;adapter&gt;.weight</c> (PEFT's file drops the adapter name and the
/// <c>.weight</c>: <c>base_model.model.X.lora_magnitude_vector</c>). Applied by <see cref="LoraLinear"/> through
/// <see cref="Dora"/>.
/// </summary>
public sealed class DoraMagnitude : Module
{
    /// <summary>Creates a zero magnitude of <paramref name="outFeatures"/> entries.</summary>
    public DoraMagnitude(int outFeatures) => Weight = RegisterParameter("weight", new Parameter(outFeatures));

    /// <summary>m, (out).</summary>
    public Parameter Weight { get; }

    /// <summary>Always throws: the magnitude rescales a layer's output, which <see cref="LoraLinear"/> does.</summary>
    /// <exception cref="InvalidOperationException">Always.</exception>
    public override Tensor Forward(Tensor input) =>
        throw new InvalidOperationException("DoraMagnitude: a magnitude vector has no forward; LoraLinear applies it.");
}
