using System.Diagnostics;
using System.Numerics;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using LoRA.Managed.Autograd;
using LoRA.Managed.Lora;
using LoRA.Managed.Models;
using LoRA.Managed.Nn;
using LoRA.Managed.Optim;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Sample;

/// <summary>
/// The sample service: trains a base classifier on task A once (FOLDER/base.safetensors), loads it, trains a LoRA
/// adapter for task B (FOLDER/adapter/), loads base + adapter again as a service would, then answers requests
/// (<see cref="Requests"/>).
/// </summary>
internal static class SampleApp
{
    /// <summary>Runs in <paramref name="folder"/>; 0 if the adapter learnt task B and reloads unchanged.</summary>
    public static int Run(string folder, TextReader input, TextWriter output)
    {
        var clock = Stopwatch.StartNew();
        // NativeAOT fixes these when compiling (IlcInstructionSet); the JIT asks the CPU at run time.
        output.WriteLine($"SIMD: Vector512 {Vector512.IsHardwareAccelerated}, "
            + $"Vector256 {Vector256.IsHardwareAccelerated}, Vector<float> {Vector<float>.Count} lanes; "
            + $"x86 AVX-512F {Avx512F.IsSupported}, FMA {Fma.IsSupported}");
        Directory.CreateDirectory(folder);
        string basePath = Path.Combine(folder, "base.safetensors"), adapterDir = Path.Combine(folder, "adapter");
        if (!File.Exists(basePath))
        {
            TrainBase(basePath);
            output.WriteLine($"trained the base model on task A and saved {basePath}");
        }
        PeftModel trained = TrainAdapter(basePath, adapterDir);
        output.WriteLine(trained.TrainableParameterSummary());

        Mlp baseModel = LoadBase(basePath);
        // what a service loads at start-up
        PeftModel served = PeftModel.FromPretrained(LoadBase(basePath), adapterDir);
        var (testA, labelsA) = Quadrants.Draw(new TorchGenerator(3), 2000, Quadrants.LabelA);
        var (testB, labelsB) = Quadrants.Draw(new TorchGenerator(4), 2000, Quadrants.LabelB);
        double baseA = Classifier.Accuracy(baseModel, testA, labelsA);
        double baseB = Classifier.Accuracy(baseModel, testB, labelsB);
        double adaptedB = Classifier.Accuracy(served, testB, labelsB);
        bool sameAsTrained = Classifier.Predict(served, testB).SequenceEqual(Classifier.Predict(trained, testB));
        output.WriteLine(FormattableString.Invariant(
            $"base model: accuracy {baseA:F4} on task A, {baseB:F4} on task B; with the adapter: {adaptedB:F4} on B"));
        string reloaded = sameAsTrained ? "same predictions as after training" : "DIFFERENT predictions";
        output.WriteLine($"adapter reloaded from {adapterDir}: {reloaded}");
        output.WriteLine(FormattableString.Invariant(
            $"ready in {clock.Elapsed.TotalSeconds:F2} s; send \"x y\" lines, an empty line ends"));

        int answered = Requests.Serve(baseModel, served, input, output);
        output.WriteLine($"answered {answered} requests");
        return adaptedB >= 0.9 && sameAsTrained ? 0 : 1;
    }

    /// <summary>A 2 → 64 → 64 → 4 MLP trained on task A, saved to <paramref name="path"/>.</summary>
    private static void TrainBase(string path)
    {
        var fresh = new Mlp(new TorchGenerator(0), 2, 64, 64, Quadrants.Classes);
        var (x, y) = Quadrants.Draw(new TorchGenerator(1), 512, Quadrants.LabelA);
        Classifier.Train(fresh, fresh.Parameters(), x, y, steps: 400, learningRate: 1e-2);
        ModelFile.Save(fresh, path);
    }

    private static Mlp LoadBase(string path)
    {
        var model = new Mlp(new TorchGenerator(0), 2, 64, 64, Quadrants.Classes);
        ModelFile.Load(model, path);
        return model;
    }

    /// <summary>Loads the base model, adds an adapter, trains it on task B, saves it (the README's listing).</summary>
    private static PeftModel TrainAdapter(string basePath, string adapterDir)
    {
        var (x, y) = Quadrants.Draw(new TorchGenerator(2), 512, Quadrants.LabelB);   // task B's training set
        // region: embed
        var model = new Mlp(new TorchGenerator(0), 2, 64, 64, 4);       // 2 → 64 → 64 → 4, ReLU between
        ModelFile.Load(model, basePath);                                // safetensors; names and shapes checked
        var lora = new LoraConfig { Rank = 4, Alpha = 8, TargetModules = ["layers.3", "layers.5"] };
        var peft = LoraModel.GetPeftModel(model, lora, new TorchGenerator(1)); // A·B beside the last two Linears
        var adam = new Adam(peft.TrainableParameters(), 1e-2);          // the base stays frozen: only A, B train
        for (int step = 0; step < 300; step++)
        {
            adam.ZeroGrad();
            Functional.CrossEntropy(peft.Forward(x), y).Backward();
            adam.Step();
        }
        peft.SaveAdapter(adapterDir);                          // PEFT's adapter_model.safetensors + adapter_config.json
        // endregion
        return peft;
    }
}
