namespace LoRA.Managed.Models.Hf;

/// <summary>
/// The <c>llama3</c> <c>rope_scaling</c> of Llama 3.1/3.2 (Hugging Face's <c>_compute_llama3_parameters</c>):
/// frequencies whose wavelength exceeds <c>original_max_position_embeddings / low_freq_factor</c> are divided by
/// <c>factor</c>, those below <c>… / high_freq_factor</c> kept, and those between interpolated smoothly.
/// </summary>
/// <param name="Factor"><c>factor</c>.</param>
/// <param name="LowFreqFactor"><c>low_freq_factor</c>.</param>
/// <param name="HighFreqFactor"><c>high_freq_factor</c>.</param>
/// <param name="OriginalMaxPositions"><c>original_max_position_embeddings</c>.</param>
public sealed record RopeScaling(double Factor, double LowFreqFactor, double HighFreqFactor, int OriginalMaxPositions)
{
    /// <summary>Applies the scaling to the default inverse frequencies ω (rounded to float32 as PyTorch holds
    /// them).</summary>
    public float[] Apply(float[] invFreq)
    {
        ArgumentNullException.ThrowIfNull(invFreq);
        double lowWavelen = OriginalMaxPositions / LowFreqFactor, highWavelen = OriginalMaxPositions / HighFreqFactor;
        var result = new float[invFreq.Length];
        for (int i = 0; i < invFreq.Length; i++)
        {
            double f = invFreq[i], wavelen = 2 * Math.PI / f;
            double scaled = wavelen > lowWavelen ? f / Factor : f;
            if (!(wavelen < highWavelen) && !(wavelen > lowWavelen))
            {
                double smooth = (OriginalMaxPositions / wavelen - LowFreqFactor) / (HighFreqFactor - LowFreqFactor);
                scaled = (1 - smooth) * scaled / Factor + smooth * scaled;
            }
            result[i] = (float)scaled;
        }
        return result;
    }
}
