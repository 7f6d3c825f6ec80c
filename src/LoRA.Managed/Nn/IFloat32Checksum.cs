namespace LoRA.Managed.Nn;

/// <summary>
/// A model that recorded the fingerprint (<see cref="ParameterChecksum"/>) of the float32 weights it was loaded from,
/// because it no longer holds them all: a base quantised on load. <c>Lora.BaseChecksum</c> returns the record, so an
/// adapter trained on the quantised base carries the float32 base's fingerprint and the two bases accept each other's
/// adapters.
/// </summary>
public interface IFloat32Checksum
{
    /// <summary>The float32 weights' fingerprint, or null when the model holds its weights in float32 (the
    /// fingerprint is then computed from them).</summary>
    string? Float32Checksum { get; }

    /// <summary>Drops the record once the float32 weights have changed (a merge, or an initialisation that rewrites
    /// the base, such as PiSSA), so no stale fingerprint is handed on; a base with quantised layers then carries
    /// none.</summary>
    void ForgetFloat32Checksum();
}
