using LoRA.Managed.Models;
using LoRA.Managed.Autograd;
using LoRA.Managed.Lora;
using LoRA.Managed.Nn;
using LoRA.Managed.Optim;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Samples;

/// <summary>The README's library example: train, wrap the last layer PEFT-style, train the adapter, save it.</summary>
public static class QuickStartSample
{
    /// <summary>Runs a few steps of each phase on random data and saves the adapter to a temporary folder.</summary>
    public static void Run(TextWriter o)
    {
        Tensor x = new TorchGenerator(1).Rand(64, 784);
        int[] y = Enumerable.Range(0, 64).Select(i => i % 10).ToArray();
        string dir = Path.Combine(Path.GetTempPath(), "lora-managed-quickstart-" + Guid.NewGuid().ToString("N"));
        // region: quickstart
        var gen = new TorchGenerator(seed: 0);                   // torch.manual_seed(0)
        var model = Mlp.Blog(gen);                                // layers.1 / layers.3 / layers.5, PyTorch's init
        var adam = new Adam(model.Parameters(), 1e-3);
        for (int step = 0; step < 3; step++)
        {
            adam.ZeroGrad();
            Functional.CrossEntropy(model.Forward(x), y).Backward();
            adam.Step();
        }
        var peft = LoraModel.GetPeftModel(model, new LoraConfig
        {
            Rank = 4, Alpha = 1, Scaling = LoraScaling.Alpha, Init = LoraInit.Svd, TargetModules = ["layers.5"],
        }, gen);
        // trainable params: 1,064 || all params: 536,882 || trainable%: 0.1982
        o.WriteLine(peft.TrainableParameterSummary());
        var loraAdam = new Adam(peft.TrainableParameters(), 5e-3);
        loraAdam.ZeroGrad();
        Functional.CrossEntropy(peft.Forward(x), y).Backward();
        loraAdam.Step();
        // adapter_model.safetensors + adapter_config.json, as PEFT writes them
        peft.SaveAdapter(dir);
        // endregion
        o.WriteLine(string.Join(", ", Directory.GetFiles(dir).Select(Path.GetFileName).Order()));
        Directory.Delete(dir, recursive: true);
    }
}
