using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace LoRA.Managed.IO;

/// <summary>
/// System.Text.Json's source-generated serializer for the JSON documents the library builds as
/// <see cref="JsonObject"/> trees (<c>trainer_state.json</c>, <c>rng_state.json</c>, the char tokenizer).
/// The reflection-based <see cref="JsonSerializer"/> overloads are disabled under NativeAOT and warn
/// (IL2026/IL3050) under trimming; the generated metadata needs neither reflection nor code generation.
/// </summary>
[JsonSerializable(typeof(JsonObject))]
internal sealed partial class JsonNodeContext : JsonSerializerContext
{
    /// <summary>The same metadata with indented output (two spaces, as <c>WriteIndented</c> always wrote).</summary>
    internal static JsonNodeContext Indented { get; } = new(new JsonSerializerOptions { WriteIndented = true });
}
