using LoRA.Managed.Samples.Derivations;

namespace LoRA.Managed.Samples;

/// <summary>
/// Every derivation of the chapters, checked numerically: each gradient formula, written out as sums in double
/// precision, against central finite differences of its forward and against the library's float32 autograd.
/// </summary>
public static class DerivationsSample
{
    /// <summary>Prints one verdict per derivation.</summary>
    public static void Run(TextWriter o)
    {
        o.WriteLine(LinearDerivation.Check());
        o.WriteLine(SoftmaxCrossEntropyDerivation.Check());
        o.WriteLine(SoftmaxCrossEntropyDerivation.Overflow());
        o.WriteLine(AdamDerivation.Check());
        o.WriteLine(AdamDerivation.SubnormalFloor());
        o.WriteLine(LoraDerivation.Check());
        o.WriteLine(LoraDerivation.ZeroB());
        o.WriteLine(NormDerivation.Check());
        o.WriteLine(AttentionDerivation.Check());
        o.WriteLine(RopeDerivation.Check());
    }
}
