using LoRA.Managed.Tensors;
using LoRA.Managed.Text;

namespace LoRA.Managed.Tests.Text;

public class SequencePackingTests
{
    [Test]
    public void WindowsHaveNextTokenTargetsAndDropTheTail()
    {
        int[] tokens = Enumerable.Range(0, 10).ToArray();
        var packed = SequencePacker.Pack(tokens, 3);
        // Windows start at 0, 3, 6 (the one at 6 needs tokens up to 9): three windows.
        Assert.That(packed.Count, Is.EqualTo(3));
        Assert.That(packed.Inputs(2).ToArray(), Is.EqualTo(new[] { 6, 7, 8 }));
        Assert.That(packed.Targets(2).ToArray(), Is.EqualTo(new[] { 7, 8, 9 }));
        Assert.That(SequencePacker.Pack(tokens, 9).Count, Is.EqualTo(1));
        Assert.That(SequencePacker.Pack(tokens, 10).Count, Is.EqualTo(0));
        Assert.That(SequencePacker.Pack(tokens, 4, stride: 2).Count, Is.EqualTo(3)); // starts 0, 2, 4
        Assert.Throws<ArgumentOutOfRangeException>(() => packed.Inputs(3));
        Assert.Throws<ArgumentOutOfRangeException>(() => SequencePacker.Pack(tokens, 0));
    }

    [Test]
    public void SplitIsContiguousHeadAndTail()
    {
        int[] tokens = Enumerable.Range(0, 100).ToArray();
        var (train, val) = TrainValidationSplit.Split(tokens, 0.1);
        Assert.That(train, Is.EqualTo(Enumerable.Range(0, 90).ToArray()));
        Assert.That(val, Is.EqualTo(Enumerable.Range(90, 10).ToArray()));
        Assert.Throws<ArgumentOutOfRangeException>(() => TrainValidationSplit.Split(tokens, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => TrainValidationSplit.Split(new[] { 1, 2 }, 0.1));
    }

    [Test]
    public void BatchesCoverEveryWindowOncePerEpochInASeededOrder()
    {
        int[] tokens = Enumerable.Range(0, 41).ToArray();
        var packed = SequencePacker.Pack(tokens, 4); // 10 windows
        var it = new LmBatchIterator(packed, 3, new TorchGenerator(7));
        Assert.That(it.BatchesPerEpoch, Is.EqualTo(4));
        var epoch1 = it.Epoch().ToList();
        Assert.That(epoch1.Select(b => b.Batch), Is.EqualTo(new[] { 3, 3, 3, 1 }));
        var starts = epoch1.SelectMany(b => Enumerable.Range(0, b.Batch).Select(r => b.Inputs[r * 4])).ToList();
        Assert.That(starts.OrderBy(s => s), Is.EqualTo(Enumerable.Range(0, 10).Select(i => i * 4)));
        Assert.That(starts, Is.Not.EqualTo(starts.OrderBy(s => s).ToList()), "shuffled");
        foreach (var b in epoch1)
            for (int i = 0; i < b.Inputs.Length; i++) Assert.That(b.Targets[i], Is.EqualTo(b.Inputs[i] + 1));
        var again = new LmBatchIterator(packed, 3, new TorchGenerator(7)).Epoch().Select(b => b.Inputs).ToList();
        Assert.That(again, Is.EqualTo(epoch1.Select(b => b.Inputs).ToList()), "same seed, same order");
        var epoch2 = it.Epoch().SelectMany(b => b.Inputs).ToList();
        Assert.That(epoch2, Is.Not.EqualTo(epoch1.SelectMany(b => b.Inputs).ToList()), "a new permutation each epoch");
        var ordered = new LmBatchIterator(packed, 3, dropLast: true);
        Assert.That(ordered.Epoch().Count(), Is.EqualTo(3));
        Assert.That(ordered.Epoch().First().Inputs.Take(4), Is.EqualTo(new[] { 0, 1, 2, 3 }));
    }
}
