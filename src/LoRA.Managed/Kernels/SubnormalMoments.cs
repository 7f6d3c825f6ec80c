using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LoRA.Managed.Kernels;

/// <summary>
/// Adam's first moment of a parameter whose gradient is exactly zero decays geometrically,
/// <c>m ← m + (1−β₁)·(0 − m)</c>, and after a few hundred steps becomes subnormal (below 2⁻¹²⁶ ≈ 1.2·10⁻³⁸).
/// On the Intel Xeon where this was measured, a SIMD multiply producing a subnormal took a microcode assist. In the
/// blog's MLP on raw MNIST a fifth of the weights (MNIST's always-blank border pixels, dead ReLU units) reach
/// that state, and Adam's step became 10× slower than its memory traffic. .NET cannot set the flush-to-zero
/// mode, and flushing would change the bits PyTorch computes, so this computes the same IEEE results without
/// the subnormal arithmetic.
/// </summary>
/// <remarks>
/// <para>Subnormal floats are the integers 0..2²³ times 2⁻¹⁴⁹, and their bit patterns are those integers:
/// for |m| = A·2⁻¹⁴⁹, <c>(1−β₁)·(0 − m)</c> rounds (to nearest, ties to even) to R·2⁻¹⁴⁹ with
/// R = rne((1−β₁)·A), which double precision computes exactly (a 24-bit by 23-bit product); and
/// <c>m + that</c> = (A − R)·2⁻¹⁴⁹ exactly, with the sign of m (or +0 when A = R, as IEEE's x − x = +0).</para>
/// <para>θ's update for such a lane, <c>θ·d − s·m/(√v/c + ε)</c>, subtracts at most |s|·2⁻¹²⁶/ε, far below half
/// an ulp of θ·d unless |θ·d| is tiny: <see cref="Threshold"/> bounds that, so θ ← θ·d exactly, which the
/// caller gets by running the ordinary vector update with m replaced by 0 in those lanes.</para>
/// </remarks>
internal static class SubnormalMoments
{
    private const int MinNormalBits = 0x0080_0000; // 2⁻¹²⁶

    /// <summary>
    /// The smallest |θ·d| for which the update's subtraction is provably below half an ulp: half an ulp of x is at
    /// least |x|·2⁻²⁵, and |s·m/denom| ≤ |s|·2⁻¹²⁶/ε; a factor 2 covers the roundings on the way. +∞ (no lane
    /// qualifies) when ε ≤ 0 or 1 − β₁ is outside (0, 1].
    /// </summary>
    public static float Threshold(float stepSize, float eps, float oneMinusBeta1)
    {
        if (!(eps > 0f) || !(oneMinusBeta1 > 0f && oneMinusBeta1 <= 1f) || !float.IsFinite(stepSize))
            return float.PositiveInfinity;
        double t = Math.Abs((double)stepSize) * (1.1754943508222875e-38 / eps) * 33554432.0 * 2.0;
        return t < float.MaxValue ? (float)t : float.PositiveInfinity;
    }

    /// <summary>
    /// Whether any lane of <paramref name="m"/> is subnormal and non-zero: the cheap test (three instructions) that
    /// lets the common vector, with no such lane, skip the dozen of <see cref="Lanes"/>, which cost Adam's pass a
    /// quarter of its time. |m|'s bits minus 1 wrap to 2³²−1 for zero, so one unsigned compare finds
    /// 0 &lt; |m| &lt; 2⁻¹²⁶.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool Any(Vector512<float> m) => Vector512.LessThanAny(MagnitudeMinusOne(m), SubnormalLimit);

    // |m|'s bits minus 1, and the bound below which that is a non-zero subnormal (Any).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<uint> MagnitudeMinusOne(Vector512<float> m) =>
        (m.AsUInt32() & Vector512.Create(0x7FFF_FFFFu)) - Vector512<uint>.One;

    private static Vector512<uint> SubnormalLimit
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Vector512.Create((uint)MinNormalBits - 1);
    }

    /// <summary>Lanes whose m is subnormal (non-zero), whose gradient is ±0, and whose |θ·d| exceeds the
    /// threshold.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<int> Lanes(Vector512<float> m, Vector512<float> g, Vector512<float> thetaDecayed,
        Vector512<float> threshold) => Selected(Subnormal(m), g, thetaDecayed, threshold);

    /// <summary>
    /// The lanes <see cref="Lanes"/> picks, adding 1 to <paramref name="flagged"/> when any lane of m is subnormal
    /// and non-zero, whatever its gradient (the vectors <see cref="Dense"/> counts): the dense loop's count from the
    /// test it makes anyway, without a branch. A second test of its own for the count cost that loop ten instructions
    /// a vector.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<int> CountedLanes(Vector512<float> m, Vector512<float> g, Vector512<float> thetaDecayed,
        Vector512<float> threshold, ref int flagged)
    {
        Vector512<int> subnormal = Subnormal(m);
        flagged += subnormal != Vector512<int>.Zero ? 1 : 0;
        return Selected(subnormal, g, thetaDecayed, threshold);
    }

    // The lanes whose m is subnormal and non-zero; integer tests on the bits: floating-point compares would read the
    // subnormals this avoids touching.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Subnormal(Vector512<float> m)
    {
        Vector512<int> magnitude = m.AsInt32() & Vector512.Create(0x7FFF_FFFF);
        return Vector512.LessThan(magnitude, Vector512.Create(MinNormalBits))
            & ~Vector512.Equals(magnitude, Vector512<int>.Zero);
    }

    // Of the subnormal lanes, those whose gradient is ±0 and whose |θ·d| exceeds the threshold.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Selected(Vector512<int> subnormal, Vector512<float> g, Vector512<float> thetaDecayed,
        Vector512<float> threshold)
    {
        Vector512<int> zeroGrad = Vector512.Equals(g.AsInt32() & Vector512.Create(0x7FFF_FFFF), Vector512<int>.Zero);
        Vector512<int> large = Vector512.GreaterThan(Vector512.Abs(thetaDecayed), threshold).AsInt32();
        return subnormal & zeroGrad & large;
    }

    /// <summary>Elements per chunk of Adam's pass judged dense or sparse in subnormal moments (see
    /// <see cref="DenseShare"/>): 64 vectors.</summary>
    public const int ChunkLength = 1024;

    /// <summary>
    /// A chunk in which at least one vector in this many holds a subnormal moment is dense. Adam's pass updates each
    /// chunk as its predecessor turned out to be (the first of a part as sparse): a dense chunk has every vector's
    /// lanes tested and decayed without a branch, a sparse one tests <see cref="Any"/> on each vector and skips the
    /// lane test when it finds none. After the blog MLP's first epoch 12 % of the first layer's moments are
    /// subnormal, spread over 48 % of its vectors with no pattern a branch predictor learns; tested vector by vector,
    /// Adam's pass on that state took 380–407 µs on one Zen 5 core against 191–204 µs with those moments zeroed
    /// (docs/07-performance.md, "Subnormal moments spread out"). Both ways compute the same bits, so a wrong guess
    /// costs time only.
    /// </summary>
    public const int DenseShare = 8;

    /// <summary>Whether <paramref name="flagged"/> vectors with a subnormal moment out of
    /// <paramref name="vectors"/> make a chunk dense (<see cref="DenseShare"/>).</summary>
    public static bool Dense(int flagged, int vectors) => flagged > 0 && flagged * DenseShare >= vectors;

    /// <summary>
    /// The largest subnormal magnitude A (m = ±A·2⁻¹⁴⁹) that a zero gradient leaves unchanged: rne((1−β₁)·A) = 0, that
    /// is (1−β₁)·A ≤ ½ (a tie rounds to the even 0), computed exactly in double. With 1 − β₁ = 0.1 it is 4: a first
    /// moment decays to ±4·2⁻¹⁴⁹ and stays there, so in a long run nearly every decaying lane is at rest, and in a
    /// sparse chunk (<see cref="DenseShare"/>) <see cref="AnyMoving"/> lets those vectors skip <see cref="Decay"/>'s
    /// conversions to double; a dense chunk decays every vector.
    /// </summary>
    public static int RestingMagnitude(float oneMinusBeta1)
    {
        double f = oneMinusBeta1;
        if (!(f > 0)) return MinNormalBits; // (1−β₁) ≤ 0 or NaN: Lanes never selects a lane (Threshold is +∞)
        double a = Math.Min(Math.Floor(0.5 / f), MinNormalBits);
        while (a > 0 && f * a > 0.5) a--;
        while (a < MinNormalBits && f * (a + 1) <= 0.5) a++;
        return (int)a;
    }

    /// <summary>Whether a lane selected by <paramref name="decaying"/> has a magnitude above
    /// <paramref name="resting"/> (<see cref="RestingMagnitude"/>), so that <see cref="Decay"/> changes it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool AnyMoving(Vector512<float> m, Vector512<int> decaying, Vector512<int> resting) =>
        (Vector512.GreaterThan(m.AsInt32() & Vector512.Create(0x7FFF_FFFF), resting) & decaying)
        != Vector512<int>.Zero;

    /// <summary>
    /// <c>m + (1−β₁)·(0 − m)</c> for subnormal m, bit for bit as IEEE float arithmetic gives it, in integers
    /// and doubles (lanes where m is not subnormal get meaningless values: the caller selects).
    /// </summary>
    /// <param name="m">The moments.</param>
    /// <param name="oneMinusBeta1">1 − β₁ in double in every lane (<c>Vector512.Create((double)(1 − β₁))</c>), made
    /// once by the caller's loop.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Decay(Vector512<float> m, Vector512<double> oneMinusBeta1)
    {
        Vector512<int> bits = m.AsInt32();
        Vector512<int> sign = bits & Vector512.Create(unchecked((int)0x8000_0000));
        Vector512<int> a = bits & Vector512.Create(0x7FFF_FFFF);
        // cvtpd2dq rounds to nearest, ties to even (the default MXCSR mode .NET runs in), like the float multiply.
        Vector256<int> rLow = Avx512F.ConvertToVector256Int32(Avx512F.ConvertToVector512Double(a.GetLower()) *
            oneMinusBeta1);
        Vector256<int> rHigh = Avx512F.ConvertToVector256Int32(Avx512F.ConvertToVector512Double(a.GetUpper()) *
            oneMinusBeta1);
        // Not Vector512.Create(rLow, rHigh): the JIT built that by inserting both halves into one register zeroed
        // before Adam's loop, so each vector's insert waited for the previous vector's (a chain through the loop).
        // Widening rLow leaves its upper half undefined, with no dependency, and one insert fills it.
        Vector512<int> d = a - rLow.ToVector512Unsafe().WithUpper(rHigh);
        return Vector512.ConditionalSelect(Vector512.Equals(d, Vector512<int>.Zero), Vector512<int>.Zero, sign | d)
            .AsSingle();
    }
}
