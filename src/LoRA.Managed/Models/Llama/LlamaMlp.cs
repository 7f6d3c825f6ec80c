using LoRA.Managed.Autograd;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Models;

/// <summary>
/// Llama's SwiGLU MLP (<c>LlamaMLP</c>; Shazeer 2020, "GLU Variants Improve Transformer"):
/// <c>down_proj(silu(gate_proj(x)) ⊙ up_proj(x))</c>.
/// </summary>
public sealed class LlamaMlp : Module
{
    private Module _gate, _up, _down;

    /// <summary>Creates the MLP with zero weights (to be loaded).</summary>
    public LlamaMlp(int hidden, int intermediate, bool bias)
    {
        _gate = RegisterModule("gate_proj", Linear.Empty(hidden, intermediate, bias));
        _up = RegisterModule("up_proj", Linear.Empty(hidden, intermediate, bias));
        _down = RegisterModule("down_proj", Linear.Empty(intermediate, hidden, bias));
    }

    /// <inheritdoc />
    /// <remarks>The gate is one op (<see cref="Functional.SwiGlu"/>), with the values of
    /// <c>Mul(Silu(gate), up)</c>; gate_proj still runs before up_proj.</remarks>
    public override Tensor Forward(Tensor input)
    {
        Tensor gate = _gate.Forward(input);
        return _down.Forward(Functional.SwiGlu(gate, _up.Forward(input)));
    }

    /// <inheritdoc />
    protected override void OnChildReplaced(string name, Module module)
    {
        switch (name)
        {
            case "gate_proj": _gate = module; break;
            case "up_proj": _up = module; break;
            default: _down = module; break;
        }
    }
}
