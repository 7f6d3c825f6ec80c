using LoRA.Managed.Kernels;

namespace LoRA.Managed.Nn;

/// <summary>
/// A module whose frozen weight can live in a <see cref="BaseDType"/> instead of float32: QLoRA's base
/// (<see cref="Linear"/>; <see cref="Embedding"/> for the frozen tables and a tied head). Loaders quantise through
/// this seam, tensor by tensor, so the float32 weight of a quantised layer never exists whole, and a quantised copy
/// read from a cache can be installed as is.
/// </summary>
public interface IQuantizableWeight
{
    /// <summary>The float32 weight; empty once quantised.</summary>
    Parameter Weight { get; }

    /// <summary>The weight in quantised storage, <c>[rows, columns]</c> as the module's kernel reads it, or null while
    /// <see cref="Weight"/> holds it in float32.</summary>
    QuantizedMatrix? QuantizedWeight { get; }

    /// <summary>The <c>[rows, columns]</c> the quantised weight has (a Linear's <c>[out, in]</c> whatever the file's
    /// layout, an embedding's <c>[vocabulary, dim]</c>).</summary>
    (int Rows, int Columns) QuantizedShape { get; }

    /// <summary>True once the weight is stored quantised (frozen, no longer a parameter).</summary>
    bool IsQuantized { get; }

    /// <summary>Quantises <paramref name="weight"/> (laid out as <see cref="Weight"/> is) into
    /// <paramref name="dtype"/> and drops the float32 parameter. Irreversible.</summary>
    /// <exception cref="InvalidOperationException">Already quantised.</exception>
    /// <exception cref="ArgumentException">The length does not match the weight's.</exception>
    void QuantizeWeight(BaseDType dtype, ReadOnlySpan<float> weight);

    /// <summary>Installs an already quantised weight (e.g. read from a cache) and drops the float32
    /// parameter.</summary>
    /// <exception cref="InvalidOperationException">Already quantised.</exception>
    /// <exception cref="ArgumentException">Its shape is not the one <see cref="QuantizedWeight"/> would
    /// have.</exception>
    void UseQuantizedWeight(QuantizedMatrix weight);
}
