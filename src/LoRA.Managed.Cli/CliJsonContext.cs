using System.Text.Json.Serialization;
using LoRA.Managed.Cli.Bench;

namespace LoRA.Managed.Cli;

/// <summary>
/// System.Text.Json's source-generated metadata for every <c>--json</c> report, so the reports work in a NativeAOT
/// binary (where reflection-based serialization is disabled). A report is a <c>Dictionary&lt;string, object?&gt;</c>
/// whose values are serialised by their run-time type, so each such type is listed here; a missing one fails the
/// command's <c>--json</c> test with <see cref="NotSupportedException"/> under the JIT too.
/// </summary>
[JsonSourceGenerationOptions(WriteIndented = true)]
[JsonSerializable(typeof(Dictionary<string, object?>))]
[JsonSerializable(typeof(List<Dictionary<string, object?>>))]
[JsonSerializable(typeof(QuickBenchResult))]
[JsonSerializable(typeof(string))]
[JsonSerializable(typeof(bool))]
[JsonSerializable(typeof(int))]
[JsonSerializable(typeof(long))]
[JsonSerializable(typeof(ulong))]
[JsonSerializable(typeof(float))]
[JsonSerializable(typeof(double))]
[JsonSerializable(typeof(double[]))]
[JsonSerializable(typeof(double[][]))]
[JsonSerializable(typeof(int[]))]
[JsonSerializable(typeof(int[][]))]
internal sealed partial class CliJsonContext : JsonSerializerContext;
