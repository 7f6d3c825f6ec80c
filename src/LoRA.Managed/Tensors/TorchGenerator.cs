namespace LoRA.Managed.Tensors;

/// <summary>
/// A seeded random generator that reproduces PyTorch's CPU generator: the 32-bit Mersenne
/// Twister (mt19937) seeded as <c>torch.manual_seed(seed)</c> does, and floats made as ATen's
/// <c>uniform_real_distribution</c> makes them (the low 24 bits of one draw times 2⁻²⁴).
/// </summary>
/// <remarks>
/// With this generator, <c>torch.manual_seed(13); torch.rand(4, 4)</c> is
/// <c>new TorchGenerator(13).Rand(4, 4)</c>, value for value. Every random draw in the library
/// (initialisation, shuffling, dropout) takes an explicit generator, so the same seed and thread
/// count give bitwise-identical results.
/// </remarks>
public sealed class TorchGenerator
{
    private const int N = 624, M = 397;
    private const uint MatrixA = 0x9908b0dfu, UpperMask = 0x80000000u, LowerMask = 0x7fffffffu;

    private readonly uint[] _mt = new uint[N];
    private int _index;

    /// <summary>Creates a generator seeded like <c>torch.manual_seed(seed)</c>.</summary>
    public TorchGenerator(ulong seed = 67280421310721UL) => ManualSeed(seed);

    /// <summary>The seed last given to <see cref="ManualSeed"/>.</summary>
    public ulong Seed { get; private set; }

    /// <summary>Re-seeds the generator (mt19937's standard initialisation with the low 32 bits of the seed, as PyTorch
    /// does).</summary>
    public void ManualSeed(ulong seed)
    {
        Seed = seed;
        _mt[0] = (uint)(seed & 0xffffffffu);
        for (int i = 1; i < N; i++)
            _mt[i] = unchecked(1812433253u * (_mt[i - 1] ^ (_mt[i - 1] >> 30)) + (uint)i);
        _index = N;
    }

    /// <summary>The next 32-bit draw of mt19937.</summary>
    public uint NextUInt32()
    {
        if (_index >= N) Twist();
        uint y = _mt[_index++];
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c5680u;
        y ^= (y << 15) & 0xefc60000u;
        y ^= y >> 18;
        return y;
    }

    /// <summary>A 64-bit draw made from two 32-bit draws, the first as the high half (ATen's
    /// <c>random64</c>).</summary>
    public ulong NextUInt64()
    {
        ulong hi = NextUInt32();
        ulong lo = NextUInt32();
        return (hi << 32) | lo;
    }

    /// <summary>A float in [0, 1): the low 24 bits of one draw times 2⁻²⁴.</summary>
    public float NextFloat() => (float)((NextUInt32() & 0xffffffu) * (1.0 / (1 << 24)));

    /// <summary>A double in [0, 1) from 53 bits of a 64-bit draw (ATen's double path).</summary>
    public double NextDouble() => (NextUInt64() & ((1UL << 53) - 1)) * (1.0 / (1UL << 53));

    /// <summary>A float uniform in [from, to), computed as ATen does: in double, then rounded to float.</summary>
    public float Uniform(float from, float to)
    {
        double x = (NextUInt32() & 0xffffffu) * (1.0 / (1 << 24));
        return (float)(x * ((double)to - from) + from);
    }

    /// <summary>An integer uniform in [0, n), without modulo bias (rejection sampling).</summary>
    public int NextInt(int n)
    {
        if (n <= 0) throw new ArgumentOutOfRangeException(nameof(n), n, "NextInt: n must be positive.");
        uint limit = uint.MaxValue - (uint.MaxValue % (uint)n);
        uint r;
        do r = NextUInt32(); while (r >= limit);
        return (int)(r % (uint)n);
    }

    /// <summary>A standard normal draw (Box–Muller on two doubles).</summary>
    public double NextNormal()
    {
        double u1 = 1.0 - NextDouble(), u2 = NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
    }

    /// <summary>Fills <paramref name="dst"/> with uniform floats in [from, to), in order (as <c>tensor.uniform_(from,
    /// to)</c>).</summary>
    public void FillUniform(Span<float> dst, float from = 0f, float to = 1f)
    {
        for (int i = 0; i < dst.Length; i++) dst[i] = Uniform(from, to);
    }

    /// <summary>Fills <paramref name="dst"/> with normal draws of the given mean and standard deviation.</summary>
    public void FillNormal(Span<float> dst, float mean = 0f, float std = 1f)
    {
        for (int i = 0; i < dst.Length; i++) dst[i] = (float)(mean + std * NextNormal());
    }

    /// <summary>A tensor of uniform [0, 1) floats, as <c>torch.rand(shape)</c>.</summary>
    public Tensor Rand(params int[] shape)
    {
        var t = new Tensor(shape);
        FillUniform(t.Data);
        return t;
    }

    /// <summary>
    /// A non-negative 64-bit integer as <c>torch.empty((), dtype=torch.int64).random_()</c> draws it: one
    /// <see cref="NextUInt64"/> reduced modulo 2⁶³ (ATen's <c>uniform_int</c> for int64). PyTorch's
    /// <c>DataLoader</c> draws its per-epoch seeds this way.
    /// </summary>
    public long NextInt64() => (long)(NextUInt64() & long.MaxValue);

    /// <summary>
    /// Writes <c>torch.randperm(n, generator=g)</c> into <paramref name="result"/> (n = its length): the identity,
    /// then for i = 0..n−2 a swap of element i with element i + (32-bit draw mod (n − i)), as ATen's CPU
    /// <c>randperm</c> does (PyTorch 1.13). The draws keep a small modulo bias; it is PyTorch's, kept for its order.
    /// </summary>
    public void RandPerm(Span<int> result)
    {
        for (int i = 0; i < result.Length; i++) result[i] = i;
        for (int i = 0; i < result.Length - 1; i++)
        {
            int z = (int)(NextUInt32() % (uint)(result.Length - i));
            (result[i], result[i + z]) = (result[i + z], result[i]);
        }
    }

    /// <summary>Shuffles <paramref name="items"/> in place (Fisher–Yates from the end).</summary>
    public void Shuffle<T>(Span<T> items)
    {
        for (int i = items.Length - 1; i > 0; i--)
        {
            int j = NextInt(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    /// <summary>Copies the full generator state (for checkpoints).</summary>
    public GeneratorState GetState() => new((uint[])_mt.Clone(), _index, Seed);

    /// <summary>Words <see cref="SaveState"/> writes: the mt19937 state and the index.</summary>
    internal const int StateWords = N + 1;

    /// <summary>Copies the state into <paramref name="into"/> (<see cref="StateWords"/> words) without allocating, for
    /// a checkpointed block that must draw the same dropout masks again when it is recomputed.</summary>
    internal void SaveState(Span<uint> into)
    {
        _mt.CopyTo(into);
        into[N] = (uint)_index;
    }

    /// <summary>Restores a state written by <see cref="SaveState"/>.</summary>
    internal void LoadState(ReadOnlySpan<uint> from)
    {
        from[..N].CopyTo(_mt);
        _index = (int)from[N];
    }

    /// <summary>Restores a state taken by <see cref="GetState"/>.</summary>
    public void SetState(GeneratorState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Mt.Length != N || state.Index is < 0 or > N)
            throw new ArgumentException($"SetState: a mt19937 state has {N} words and an index in 0..{N}; got " +
                $"{state.Mt.Length} words, index {state.Index}.");
        state.Mt.CopyTo(_mt, 0);
        _index = state.Index;
        Seed = state.Seed;
    }

    private void Twist()
    {
        for (int i = 0; i < N; i++)
        {
            uint y = (_mt[i] & UpperMask) | (_mt[(i + 1) % N] & LowerMask);
            uint v = _mt[(i + M) % N] ^ (y >> 1);
            if ((y & 1) != 0) v ^= MatrixA;
            _mt[i] = v;
        }
        _index = 0;
    }
}

/// <summary>A snapshot of a <see cref="TorchGenerator"/>: the 624 state words, the position and the seed.</summary>
/// <param name="Mt">The mt19937 state words.</param>
/// <param name="Index">The next word to temper.</param>
/// <param name="Seed">The seed the generator was created with.</param>
public sealed record GeneratorState(uint[] Mt, int Index, ulong Seed);
