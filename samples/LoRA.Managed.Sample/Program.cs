using System.Diagnostics;
using System.Globalization;
using System.Numerics;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using LoRA.Managed.Autograd;
using LoRA.Managed.IO;
using LoRA.Managed.Lora;
using LoRA.Managed.Models;
using LoRA.Managed.Optim;
using LoRA.Managed.Sample;
using LoRA.Managed.Tensors;

// lora-sample [FOLDER]: trains a base classifier on task A once (FOLDER/base.safetensors), loads it, trains a LoRA
// adapter for task B (FOLDER/adapter/), loads base + adapter again as a service would, then answers requests from
// standard input, one point "x y" per line, until an empty line or the end of the input.
var clock = Stopwatch.StartNew();
// NativeAOT fixes these when compiling (IlcInstructionSet); the JIT asks the CPU at run time.
Console.WriteLine($"SIMD: Vector512 {Vector512.IsHardwareAccelerated}, Vector256 {Vector256.IsHardwareAccelerated}, "
    + $"Vector<float> {Vector<float>.Count} lanes; x86 AVX-512F {Avx512F.IsSupported}, FMA {Fma.IsSupported}");
string folder = args.Length > 0 ? args[0] : Path.Combine(Path.GetTempPath(), "lora-sample");
Directory.CreateDirectory(folder);
string basePath = Path.Combine(folder, "base.safetensors"), adapterDir = Path.Combine(folder, "adapter");
var (x, y) = Quadrants.Draw(new TorchGenerator(2), 512, Quadrants.LabelB);          // task B's training set
var (testA, labelsA) = Quadrants.Draw(new TorchGenerator(3), 2000, Quadrants.LabelA);
var (testB, labelsB) = Quadrants.Draw(new TorchGenerator(4), 2000, Quadrants.LabelB);

if (!File.Exists(basePath))
{
    var fresh = new Mlp(new TorchGenerator(0), 2, 64, 64, Quadrants.Classes);
    var (xa, ya) = Quadrants.Draw(new TorchGenerator(1), 512, Quadrants.LabelA);
    Classifier.Train(fresh, fresh.Parameters(), xa, ya, steps: 400, learningRate: 1e-2);
    ModelFile.Save(fresh, basePath);
    Console.WriteLine($"trained the base model on task A and saved {basePath}");
}

// region: embed
var model = new Mlp(new TorchGenerator(0), 2, 64, 64, 4);            // 2 → 64 → 64 → 4, ReLU between
ModelFile.Load(model, basePath);                                     // safetensors; names and shapes checked
var lora = new LoraConfig { Rank = 4, Alpha = 8, TargetModules = ["layers.3", "layers.5"] };
var peft = LoraModel.GetPeftModel(model, lora, new TorchGenerator(1));  // rank-4 A·B beside the last two Linears
var adam = new Adam(peft.TrainableParameters(), 1e-2);               // the base stays frozen: only A and B train
for (int step = 0; step < 300; step++)
{
    adam.ZeroGrad();
    Functional.CrossEntropy(peft.Forward(x), y).Backward();
    adam.Step();
}
peft.SaveAdapter(adapterDir);                                        // adapter_model.safetensors + adapter_config.json
// endregion

Console.WriteLine(peft.TrainableParameterSummary());
var baseModel = new Mlp(new TorchGenerator(0), 2, 64, 64, Quadrants.Classes);
ModelFile.Load(baseModel, basePath);
var serving = new Mlp(new TorchGenerator(0), 2, 64, 64, Quadrants.Classes);
ModelFile.Load(serving, basePath);
PeftModel served = LoraModel.LoadAdapter(serving, adapterDir);      // what a service loads at start-up
double baseA = Classifier.Accuracy(baseModel, testA, labelsA), baseB = Classifier.Accuracy(baseModel, testB, labelsB);
double adaptedB = Classifier.Accuracy(served, testB, labelsB);
bool sameAsTrained = Classifier.Predict(served, testB).SequenceEqual(Classifier.Predict(peft, testB));
Console.WriteLine(FormattableString.Invariant(
    $"base model: accuracy {baseA:F4} on task A, {baseB:F4} on task B; with the adapter: {adaptedB:F4} on task B"));
string reloaded = sameAsTrained ? "same predictions as after training" : "DIFFERENT predictions";
Console.WriteLine($"adapter reloaded from {adapterDir}: {reloaded}");
Console.WriteLine(FormattableString.Invariant(
    $"ready in {clock.Elapsed.TotalSeconds:F2} s; send \"x y\" lines, an empty line ends"));

int answered = 0;
while (Console.ReadLine() is { Length: > 0 } line)
{
    string[] parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
    if (parts.Length != 2 || !float.TryParse(parts[0], CultureInfo.InvariantCulture, out float px)
        || !float.TryParse(parts[1], CultureInfo.InvariantCulture, out float py))
    {
        Console.WriteLine($"error: expected two numbers \"x y\", got \"{line}\"");
        continue;
    }
    var point = new Tensor([px, py], 1, 2);
    int a = Classifier.Predict(baseModel, point)[0], b = Classifier.Predict(served, point)[0];
    int wantA = Quadrants.LabelA(px, py), wantB = Quadrants.LabelB(px, py);
    Console.WriteLine(FormattableString.Invariant($"({px}, {py}): base {a}, adapted {b} (task A {wantA}, B {wantB})"));
    answered++;
}
Console.WriteLine($"answered {answered} requests");
// Exit status 1 if the adapter did not learn task B or did not survive its round trip through the files.
return adaptedB >= 0.9 && sameAsTrained ? 0 : 1;
