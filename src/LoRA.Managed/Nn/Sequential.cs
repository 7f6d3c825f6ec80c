using LoRA.Managed.Tensors;

namespace LoRA.Managed.Nn;

/// <summary><c>nn.Sequential</c>: children named "0", "1", ... applied in order.</summary>
public sealed class Sequential : Module
{
    private readonly List<Module> _layers = new();

    /// <summary>Creates the chain.</summary>
    public Sequential(params Module[] layers)
    {
        foreach (var layer in layers)
            _layers.Add(RegisterModule(_layers.Count.ToString(System.Globalization.CultureInfo.InvariantCulture),
                layer));
    }

    /// <summary>Number of layers.</summary>
    public int Count => _layers.Count;

    /// <summary>The layer at <paramref name="index"/>.</summary>
    public Module this[int index] => _layers[index];

    /// <inheritdoc />
    public override Tensor Forward(Tensor input)
    {
        Tensor x = input;
        for (int i = 0; i < _layers.Count; i++)
        {
            // A Linear followed by a ReLU runs as one op, with the same bits: the bias and the ReLU are applied by
            // the threads of the product to the blocks they computed (Functional.LinearRelu).
            if (_layers[i] is Linear linear && i + 1 < _layers.Count && _layers[i + 1] is ReLU)
            {
                x = linear.ForwardRelu(x);
                i++;   // the ReLU ran inside
            }
            else x = _layers[i].Forward(x);
        }
        return x;
    }

    /// <inheritdoc />
    protected override void OnChildReplaced(string name, Module module) =>
        _layers[int.Parse(name, System.Globalization.CultureInfo.InvariantCulture)] = module;
}
