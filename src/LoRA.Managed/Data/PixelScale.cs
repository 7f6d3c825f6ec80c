namespace LoRA.Managed.Data;

/// <summary>How a dataset turns its byte pixels into the floats a model sees.</summary>
public enum PixelScale
{
    /// <summary>The raw values 0..255 as floats, as the blog feeds them.</summary>
    Raw,

    /// <summary>
    /// torchvision's <c>ToTensor()</c> then <c>Normalize((0.5,), (0.5,))</c>: <c>(x/255 − 0.5)/0.5</c>, in [−1, 1].
    /// </summary>
    MinusOneToOne,
}
