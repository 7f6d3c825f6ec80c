namespace LoRA.Managed.Kernels;

/// <summary>How a frozen base weight is stored (issue 16's <c>--base-dtype</c>); trainable tensors stay F32.</summary>
public enum BaseDType
{
    /// <summary>Plain float32 (the default).</summary>
    F32,
    /// <summary>bfloat16, see <see cref="Kernels.Bf16"/>.</summary>
    Bf16,
    /// <summary>IEEE half, see <see cref="Kernels.F16"/>.</summary>
    F16,
    /// <summary>int8 with one absmax scale per output row, see <see cref="Int8Rowwise"/>.</summary>
    Int8,
    /// <summary>QLoRA's NF4, double-quantised block scales (<see cref="Nf4"/>, <see cref="DynamicQuant8"/>).</summary>
    Nf4,
}
