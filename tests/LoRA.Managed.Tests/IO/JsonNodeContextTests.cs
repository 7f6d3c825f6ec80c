using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using LoRA.Managed.IO;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Tests.IO;

/// <summary>
/// The source-generated serializer that replaced the reflection-based one (issue 17) must write the checkpoint and
/// tokenizer files byte for byte as before, and the library must stay marked trimmable for its consumers.
/// </summary>
public class JsonNodeContextTests
{
    private static JsonObject Sample() => new()
    {
        ["global_step"] = 7, ["epoch"] = 1, ["best_metric"] = 0.25, ["best_model_checkpoint"] = null,
        ["log_history"] = new JsonArray((JsonNode)new JsonObject { ["step"] = 7, ["eval_loss"] = 1.5e-7 }),
        ["text"] = "\ufffd\n\"é<>&", ["mt"] = new JsonArray(JsonValue.Create(4294967295u), JsonValue.Create(-1.0f)),
    };

    [Test]
    public void IndentedWritesWhatWriteIndentedWrote()
    {
        JsonObject o = Sample();
        string before = o.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
        Assert.That(JsonSerializer.Serialize(o, JsonNodeContext.Indented.JsonObject), Is.EqualTo(before));
        Assert.That(before, Does.Contain("\n  \"epoch\": 1"), "indented, two spaces");
    }

    [Test]
    public void DefaultWritesWhatTheCompactSerializerWrote()
    {
        JsonObject o = Sample();
        byte[] generated = JsonSerializer.SerializeToUtf8Bytes(o, JsonNodeContext.Default.JsonObject);
        Assert.That(generated, Is.EqualTo(System.Text.Encoding.UTF8.GetBytes(o.ToJsonString())));
        Assert.That(generated, Does.Not.Contain((byte)'\n'));
    }

    [Test]
    public void TheLibraryIsMarkedTrimmable()
    {
        // IsTrimmable / IsAotCompatible in the csproj put this attribute on the assembly; trimming consumers read it.
        var marks = typeof(Tensor).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .Where(a => a.Key == "IsTrimmable").Select(a => a.Value);
        Assert.That(marks, Is.EqualTo(new[] { "True" }));
    }
}
