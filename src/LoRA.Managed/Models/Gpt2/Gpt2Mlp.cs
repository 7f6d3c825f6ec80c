using LoRA.Managed.Autograd;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Models;

/// <summary>GPT-2's MLP (<c>GPT2MLP</c>): <c>c_proj(gelu_new(c_fc(x)))</c>, both Conv1D with (in, out)
/// weights.</summary>
public sealed class Gpt2Mlp : Module
{
    private Module _cFc, _cProj;

    /// <summary>Creates the MLP with zero weights (to be loaded).</summary>
    public Gpt2Mlp(int embed, int inner)
    {
        _cFc = RegisterModule("c_fc", Linear.Empty(embed, inner, bias: true, fanInFanOut: true));
        _cProj = RegisterModule("c_proj", Linear.Empty(inner, embed, bias: true, fanInFanOut: true));
    }

    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => _cProj.Forward(Functional.Gelu(_cFc.Forward(input)));

    /// <inheritdoc />
    protected override void OnChildReplaced(string name, Module module)
    {
        if (name == "c_fc") _cFc = module; else _cProj = module;
    }
}
