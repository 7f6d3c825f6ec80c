using LoRA.Managed.Autograd;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Models;

/// <summary>
/// Runs a model's blocks under gradient checkpointing (<see cref="Functional.Checkpoint(Func{Tensor, Tensor},
/// Tensor)"/>), allocation-free once warm: each block's <c>Forward</c> as a delegate made once, and its dropout
/// generators collected afresh every step into a list kept per block (adapters may have been added since), for the
/// recomputation to replay the same masks. A block with nothing to train and an input that needs no gradient runs
/// plainly, as PyTorch's checkpoint of a frozen block builds no graph.
/// </summary>
internal sealed class CheckpointedBlocks
{
    private Func<Tensor, Tensor>[] _forward = [];
    private List<TorchGenerator>[] _generators = [];

    /// <summary>Block <paramref name="l"/> of <paramref name="count"/> on <paramref name="x"/>, checkpointed.</summary>
    public Tensor Forward(int l, int count, Module block, Tensor x)
    {
        if (!x.RequiresGrad && !block.AnyParameterRequiresGrad()) return block.Forward(x);
        if (_forward.Length != count)
        {
            _forward = new Func<Tensor, Tensor>[count];
            _generators = Enumerable.Range(0, count).Select(_ => new List<TorchGenerator>()).ToArray();
        }
        if (_forward[l]?.Target != block) _forward[l] = block.Forward;
        block.CollectGenerators(_generators[l]);
        return Functional.Checkpoint(_forward[l], x, _generators[l]);
    }
}
