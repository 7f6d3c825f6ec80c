using LoRA.Managed.Training;
using LoRA.Managed.Models;
using LoRA.Managed.Autograd;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;
using LoRA.Managed.Text;

namespace LoRA.Managed.Tests.Text;

public class LanguageModelLossTests
{
    [Test]
    public void MeanOverUnevenBatchesEqualsOneBigBatchAndRestoresTrainingMode()
    {
        var model = new GptModel(new GptConfig { VocabSize = 5, BlockSize = 4, Layers = 1, Heads = 1, Embed = 4,
            Dropout = 0.5f }, new TorchGenerator(3));
        int[] tokens = Enumerable.Range(0, 30).Select(i => i * 7 % 5).ToArray();
        var packed = SequencePacker.Pack(tokens, 4); // 7 windows
        int recorded = Tape.Current.Count; // other tests on this thread may have left forward-only ops behind
        double mean = LanguageModelLoss.Mean(model, packed, batchSize: 3);
        Assert.That(model.Training, Is.True);
        Assert.That(Tape.Current.Count, Is.EqualTo(recorded), "Mean records nothing");
        var batch = new LmBatchIterator(packed, 7).Epoch().Single();
        model.Eval();
        float direct;
        using (Tape.NoGrad()) direct = Functional.CrossEntropy(model.Forward(batch.Inputs, 7, 4), batch.Targets).Item();
        Assert.That(mean, Is.EqualTo(direct).Within(1e-5));
        Assert.That(LanguageModelLoss.Mean(model, packed, 2, maxWindows: 2), Is.Not.EqualTo(mean));
        Assert.Throws<ArgumentException>(() =>
            LanguageModelLoss.Mean(model, SequencePacker.Pack(tokens.AsSpan(0, 3), 4)));
    }
}
