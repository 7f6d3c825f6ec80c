using LoRA.Managed.Models;
using LoRA.Managed.Autograd;
using LoRA.Managed.Kernels;
using LoRA.Managed.Nn;
using LoRA.Managed.Optim;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Samples;

/// <summary>Chapter 4: stable cross-entropy on huge logits, and Adam's first steps.</summary>
public static class MlpSample
{
    /// <summary>Prints a log-softmax of logits in the thousands, and Adam moving a scalar.</summary>
    public static void Run(TextWriter o)
    {
        // region: logsoftmax
        float[] logits = { 1200f, 1190f, -300f };          // raw 0..255 pixels make logits this large
        float[] logp = new float[3];
        LogSoftmax.Rows(logits, logp, rows: 1, cols: 3);
        o.WriteLine($"log softmax = [{logp[0]:F6}, {logp[1]:F6}, {logp[2]:F1}]");
        o.WriteLine($"naive exp(1200) = {MathF.Exp(1200f)}");  // what an unshifted softmax would compute
        // endregion

        // region: adam
        var theta = new Parameter(new[] { 1f }, 1);
        var adam = new Adam(new[] { theta }, learningRate: 0.1);
        foreach (float g in new[] { 0.5f, 0.5f, -4f })
        {
            theta.EnsureGrad()[0] = g;
            adam.Step();
            o.WriteLine($"g = {g,4}: theta = {theta[0]:F4}");
        }
        // endregion

        // region: blog-mlp
        var model = Mlp.Blog(new TorchGenerator(0));
        o.WriteLine($"blog MLP: {model.ParameterCount():N0} parameters; " +
            $"{string.Join(", ", model.NamedParameters().Select(p => p.Key))}");
        // endregion
    }
}
