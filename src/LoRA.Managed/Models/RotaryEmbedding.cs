using LoRA.Managed.Models.Hf;

namespace LoRA.Managed.Models;

/// <summary>
/// Cos/sin tables of rotary position embedding for a head size D (Hugging Face's <c>LlamaRotaryEmbedding</c>):
/// <c>ωᵢ = 1/θ^(2i/D)</c> (optionally rescaled by <see cref="Hf.RopeScaling"/>), angle <c>p·ωᵢ</c> formed and
/// turned into cos/sin in float32 as PyTorch does. Tables grow on demand up to the positions asked for, so a
/// 128K-position model does not hold 128K rows it never uses.
/// </summary>
public sealed class RotaryEmbedding
{
    private readonly int _half;

    /// <summary>Creates the tables' frequencies for head size <paramref name="headDim"/>.</summary>
    public RotaryEmbedding(int headDim, double theta, RopeScaling? scaling)
    {
        if (headDim <= 0 || headDim % 2 != 0)
            throw new ArgumentOutOfRangeException(nameof(headDim), headDim,
                "RotaryEmbedding: the head size must be even and positive.");
        _half = headDim / 2;
        var inv = new float[_half];
        // HF: 1.0 / (base ** (arange(0, dim, 2).float() / dim)), in float32.
        for (int i = 0; i < _half; i++) inv[i] = (float)(1.0 / (float)Math.Pow(theta, (float)(2 * i) / headDim));
        InverseFrequencies = scaling is null ? inv : scaling.Apply(inv);
    }

    /// <summary>ωᵢ, D/2 values.</summary>
    public float[] InverseFrequencies { get; }

    /// <summary>cos(p·ωᵢ), (positions, D/2) row-major; at least as many positions as the last <see cref="Ensure"/>
    /// asked for.</summary>
    public float[] Cos { get; private set; } = [];

    /// <summary>sin(p·ωᵢ), laid out as <see cref="Cos"/>.</summary>
    public float[] Sin { get; private set; } = [];

    /// <summary>Grows the tables to hold positions 0..<paramref name="positions"/>−1 (doubling, so growth is
    /// rare).</summary>
    public void Ensure(int positions)
    {
        int have = Cos.Length / _half;
        if (positions <= have) return;
        int rows = Math.Max(positions, Math.Max(64, 2 * have));
        var cos = new float[rows * _half];
        var sin = new float[rows * _half];
        for (int p = 0; p < rows; p++)
            for (int i = 0; i < _half; i++)
            {
                float angle = p * InverseFrequencies[i];   // float32 product, as inv_freq @ position_ids
                cos[p * _half + i] = MathF.Cos(angle);
                sin[p * _half + i] = MathF.Sin(angle);
            }
        Cos = cos;
        Sin = sin;
    }
}
