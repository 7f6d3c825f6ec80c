namespace LoRA.Managed.Kernels;

/// <summary>The register-blocked micro-kernels <see cref="Gemm"/> can run (see <see cref="MicroKernels"/>).</summary>
internal enum MicroKernelKind
{
    /// <summary>Scalar loops over the default tile: the portable fallback.</summary>
    Scalar,
    /// <summary>6×16 on <see cref="System.Runtime.Intrinsics.Vector256{T}"/> (AVX2): 12 accumulator
    /// registers.</summary>
    Vector256x6x16,
    /// <summary>8×32 on <see cref="System.Runtime.Intrinsics.Vector512{T}"/> (AVX-512): 16 accumulator
    /// registers.</summary>
    Vector512x8x32,
}
