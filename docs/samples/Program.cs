namespace LoRA.Managed.Samples;

/// <summary>Runs one chapter's sample: <c>dotnet run --project docs/samples -- NAME</c>.</summary>
public static class Program
{
    /// <summary>The samples by name, in reading order.</summary>
    public static readonly IReadOnlyDictionary<string, Action<TextWriter>> Samples =
        new Dictionary<string, Action<TextWriter>>
    {
        ["tensors"] = TensorsSample.Run,
        ["autograd"] = AutogradSample.Run,
        ["mlp"] = MlpSample.Run,
        ["lora"] = LoraSample.Run,
        ["quickstart"] = QuickStartSample.Run,
        ["recipe"] = RecipeSample.Run,
        ["hf"] = HfLmSample.Run,
        ["hfmodels"] = HfModelsSample.Run,
        ["qlora"] = QLoraSample.Run,
        ["derivations"] = DerivationsSample.Run,
        ["exercises"] = Exercises.ExerciseChecks.Run,
    };

    /// <summary>Entry point.</summary>
    public static int Main(string[] args)
    {
        if (args.Length != 1 || !Samples.TryGetValue(args[0], out var run))
        {
            Console.Error.WriteLine($"usage: dotnet run --project docs/samples -- <{string.Join("|", Samples.Keys)}>");
            return 2;
        }
        run(Console.Out);
        return 0;
    }
}
