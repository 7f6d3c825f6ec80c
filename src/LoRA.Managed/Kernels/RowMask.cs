using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LoRA.Managed.Kernels;

/// <summary>
/// The lane masks the fused row kernels (<see cref="SoftmaxRow"/>, <see cref="LayerNormRow"/>) read and write a
/// row's ragged end with: AVX-512 masked loads and stores neither read nor write the masked-off lanes, so nothing past
/// the row is touched and no scalar tail is needed.
/// </summary>
internal static class RowMask
{
    /// <summary>True when the masked vector rows can run (AVX-512); the kernels keep a scalar loop otherwise.</summary>
    public static bool IsSupported => Vector512.IsHardwareAccelerated && Avx512F.IsSupported;

    /// <summary>All bits set in the lanes whose column <c>lane0 + lane</c> is below <paramref name="n"/>, clear in the
    /// others.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Mask(int lane0, int n) =>
        Vector512.LessThan(Vector512<int>.Indices + Vector512.Create(lane0), Vector512.Create(n)).AsSingle();
}
