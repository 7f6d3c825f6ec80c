using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace LoRA.Managed.Kernels;

/// <summary>
/// <c>eˣ</c> in single precision, one formula for a 512-bit vector and for a scalar, so that a value's exponential
/// has the same bits whichever path (vector body or scalar tail) computes it. Causal softmax, cached attention,
/// and GELU share it; the softmax of the training path and of KV-cache decoding must agree bit for bit.
/// </summary>
/// <remarks>
/// Cody–Waite range reduction and Cephes' <c>expf</c> polynomial (Moshier, "Methods and Programs for Mathematical
/// Functions", 1989): <c>n = round(x·log₂e)</c>, <c>r = x − n·ln2</c> in two FMA steps (ln2 split into a head
/// exact in float and a tail), <c>eʳ ≈ 1 + r + r²·P(r)</c> with P of degree 5 on |r| ≤ ln2/2, then
/// <c>eˣ = eʳ·2ⁿ</c>. The scaling multiplies by <c>2^⌊n/2⌋</c> and <c>2^(n−⌊n/2⌋)</c>, two normal powers of two,
/// so results up to float's largest are exact in range and larger ones become +∞. Below x = −87 the result is 0
/// (eˣ &lt; 1.7·10⁻³⁸): a subnormal operand or result costs a microcode assist of ~100 cycles on x86 cores, and the
/// masked lanes of a causal row (x = −∞) would otherwise pay it on every row. NaN stays NaN. Within 2 ulp of
/// <see cref="Math.Exp"/> over [−87, 88.7] (<c>FastExpTests</c>). <see cref="System.Numerics.Tensors"/>'
/// vector exp widens to double: about twice the work for the same float result.
/// </remarks>
internal static class FastExp
{
    private const float Log2E = 1.44269504088896341f;
    private const float Ln2Hi = 0.693359375f;         // 355/512: n·Ln2Hi is exact for |n| < 2¹⁵
    private const float Ln2Lo = -2.12194440e-4f;      // ln 2 − Ln2Hi
    private const float Lo = -87f, Hi = 89f;
    private const float P0 = 1.9875691500e-4f, P1 = 1.3981999507e-3f, P2 = 8.3334519073e-3f;
    private const float P3 = 4.1665795894e-2f, P4 = 1.6666665459e-1f, P5 = 5.0000001201e-1f;

    /// <summary><c>eˣ</c> of each lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Exp(Vector512<float> x)
    {
        Vector512<float> tiny = Vector512.LessThan(x, Vector512.Create(Lo));
        x = Vector512.Min(Vector512.Max(x, Vector512.Create(Lo)), Vector512.Create(Hi));
        Vector512<float> n = Vector512.Round(x * Vector512.Create(Log2E));
        Vector512<float> r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-Ln2Hi), x);
        r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-Ln2Lo), r);
        Vector512<float> p = Vector512.FusedMultiplyAdd(Vector512.Create(P0), r, Vector512.Create(P1));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(P2));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(P3));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(P4));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(P5));
        p = Vector512.FusedMultiplyAdd(p, r * r, r) + Vector512<float>.One;
        Vector512<int> ni = Vector512.ConvertToInt32Native(n);
        Vector512<int> half = Vector512.ShiftRightArithmetic(ni, 1);
        Vector512<float> s1 = Vector512.ShiftLeft(half + Vector512.Create(127), 23).AsSingle();
        Vector512<float> s2 = Vector512.ShiftLeft(ni - half + Vector512.Create(127), 23).AsSingle();
        return Vector512.AndNot(p * s1 * s2, tiny);
    }

    /// <summary><c>eˣ</c>, the same operations as the vector form, so the same bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Exp(float x)
    {
        if (x < Lo) return 0f;
        x = MathF.Min(MathF.Max(x, Lo), Hi);
        float n = MathF.Round(x * Log2E);
        float r = MathF.FusedMultiplyAdd(n, -Ln2Hi, x);
        r = MathF.FusedMultiplyAdd(n, -Ln2Lo, r);
        float p = MathF.FusedMultiplyAdd(P0, r, P1);
        p = MathF.FusedMultiplyAdd(p, r, P2);
        p = MathF.FusedMultiplyAdd(p, r, P3);
        p = MathF.FusedMultiplyAdd(p, r, P4);
        p = MathF.FusedMultiplyAdd(p, r, P5);
        p = MathF.FusedMultiplyAdd(p, r * r, r) + 1f;
        int ni = float.IsNaN(n) ? 0 : (int)n, half = ni >> 1;
        return p * BitConverter.Int32BitsToSingle((half + 127) << 23)
            * BitConverter.Int32BitsToSingle((ni - half + 127) << 23);
    }
}
