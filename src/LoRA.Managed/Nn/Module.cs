using LoRA.Managed.IO;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Nn;

/// <summary>
/// The base of every layer, like <c>torch.nn.Module</c>: it owns named parameters and named child
/// modules, and names them hierarchically exactly as PyTorch's <c>state_dict</c> does
/// (<c>layers.1.weight</c>, <c>layers.1.bias</c>, ...), so weights move between the two unchanged.
/// </summary>
public abstract class Module
{
    private readonly List<KeyValuePair<string, Parameter>> _parameters = new();
    private readonly List<KeyValuePair<string, Module>> _children = new();

    /// <summary>True in training mode (the default), false after <see cref="Eval"/>; dropout reads it.</summary>
    public bool Training { get; private set; } = true;

    /// <summary>Computes the module's output.</summary>
    /// <remarks>
    /// While grad mode is on and a parameter requires a gradient, the ops are recorded on the thread's
    /// <see cref="Autograd.Tape"/> until backward; for inference use <c>using (Tape.NoGrad())</c> so nothing is kept.
    /// </remarks>
    public abstract Tensor Forward(Tensor input);

    /// <summary>Registers a parameter under <paramref name="name"/> and returns it.</summary>
    protected Parameter RegisterParameter(string name, Parameter parameter)
    {
        CheckName(name);
        _parameters.Add(new(name, parameter));
        return parameter;
    }

    /// <summary>Registers a child module under <paramref name="name"/> and returns it.</summary>
    protected T RegisterModule<T>(string name, T module) where T : Module
    {
        CheckName(name);
        _children.Add(new(name, module));
        return module;
    }

    /// <summary>Replaces the direct child called <paramref name="name"/> (how LoRA swaps a Linear for a
    /// LoraLinear).</summary>
    /// <exception cref="ArgumentException">No direct child has that name.</exception>
    public void ReplaceChild(string name, Module module)
    {
        ArgumentNullException.ThrowIfNull(module);
        int i = _children.FindIndex(c => c.Key == name);
        if (i < 0)
            throw new ArgumentException($"ReplaceChild: {GetType().Name} has no child '{name}'; children: " +
                $"{string.Join(", ", _children.Select(c => c.Key))}.");
        KeyValuePair<string, Module> old = _children[i];
        _children[i] = new(name, module);
        try
        {
            OnChildReplaced(name, module);
        }
        catch
        {
            _children[i] = old; // a module that refuses the swap keeps its old child
            throw;
        }
    }

    /// <summary>Removes the direct child called <paramref name="name"/> (how a deleted adapter's factors leave their
    /// dictionary); false when there is none.</summary>
    protected bool RemoveChild(string name) => _children.RemoveAll(c => c.Key == name) > 0;

    /// <summary>Removes the direct parameter called <paramref name="name"/> (how a deleted adapter's embedding factors
    /// leave their dictionary, and a Linear whose weight moves into quantised storage drops its float32 one); false
    /// when there is none.</summary>
    protected bool RemoveParameter(string name) => _parameters.RemoveAll(p => p.Key == name) > 0;

    /// <summary>
    /// Called after <see cref="ReplaceChild"/> so modules that keep typed references to children can update them;
    /// throwing refuses the swap (<see cref="ReplaceChild"/> then puts the old child back).
    /// </summary>
    protected virtual void OnChildReplaced(string name, Module module) { }

    /// <summary>The direct children, in registration order.</summary>
    public IEnumerable<KeyValuePair<string, Module>> NamedChildren() => _children;

    /// <summary>Every module in the tree, this one first with the name "", children as <c>parent.child</c>.</summary>
    public IEnumerable<KeyValuePair<string, Module>> NamedModules(string prefix = "")
    {
        yield return new(prefix, this);
        foreach (var (name, child) in _children)
            foreach (var pair in child.NamedModules(Join(prefix, name)))
                yield return pair;
    }

    /// <summary>Every parameter in the tree with its <c>state_dict</c> name.</summary>
    public IEnumerable<KeyValuePair<string, Parameter>> NamedParameters(string prefix = "")
    {
        foreach (var (name, p) in _parameters) yield return new(Join(prefix, name), p);
        foreach (var (name, child) in _children)
            foreach (var pair in child.NamedParameters(Join(prefix, name)))
                yield return pair;
    }

    /// <summary>Every parameter in the tree, each once: a module used in two places (a shared layer) gives its
    /// parameters under their first name only, as PyTorch's <c>parameters()</c> does, so an optimiser built from
    /// them steps each once. <see cref="NamedParameters"/> and <see cref="StateDict"/> keep every name, as
    /// <c>state_dict()</c> does.</summary>
    public IEnumerable<Parameter> Parameters()
    {
        var seen = new HashSet<Parameter>(ReferenceEqualityComparer.Instance);
        foreach (var (_, p) in NamedParameters())
            if (seen.Add(p)) yield return p;
    }

    /// <summary>Parameters that currently require a gradient (what an optimiser should get).</summary>
    public IEnumerable<Parameter> TrainableParameters() => Parameters().Where(p => p.RequiresGrad);

    /// <summary>Total number of parameter elements; with <paramref name="trainableOnly"/>, only those requiring a
    /// gradient.</summary>
    public long ParameterCount(bool trainableOnly = false) =>
        Parameters().Where(p => !trainableOnly || p.RequiresGrad).Sum(p => (long)p.Count);

    /// <summary>Sets training mode on this module and every descendant (<c>module.train(mode)</c>).</summary>
    public Module Train(bool mode = true)
    {
        Training = mode;
        foreach (var (_, child) in _children) child.Train(mode);
        return this;
    }

    /// <summary>Sets evaluation mode (<c>module.eval()</c>).</summary>
    public Module Eval() => Train(false);

    /// <summary>Sets <see cref="Tensor.RequiresGrad"/> on every parameter
    /// (<c>module.requires_grad_(flag)</c>).</summary>
    public Module RequiresGrad(bool requiresGrad = true)
    {
        foreach (var p in Parameters()) p.RequiresGrad = requiresGrad;
        return this;
    }

    /// <summary>Zeroes every parameter's gradient.</summary>
    public void ZeroGrad()
    {
        foreach (var p in Parameters()) p.ZeroGrad();
    }

    /// <summary>The parameters by <c>state_dict</c> name (the tensors themselves, not copies).</summary>
    public Dictionary<string, Tensor> StateDict()
    {
        var d = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, p) in NamedParameters()) d[name] = p;
        return d;
    }

    /// <summary>
    /// Copies tensors into the parameters of the same names. With <paramref name="strict"/>, every
    /// parameter must be present and no extra key allowed; shapes must always match.
    /// </summary>
    /// <exception cref="ArgumentException">A key is missing or unexpected (strict), or a shape differs; the message
    /// names it.</exception>
    public void LoadStateDict(IReadOnlyDictionary<string, Tensor> state, bool strict = true)
    {
        ArgumentNullException.ThrowIfNull(state);
        var mine = NamedParameters().ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal);
        if (strict)
        {
            var missing = mine.Keys.Where(k => !state.ContainsKey(k)).ToList();
            var unexpected = state.Keys.Where(k => !mine.ContainsKey(k)).ToList();
            if (missing.Count > 0 || unexpected.Count > 0)
                throw new ArgumentException($"LoadStateDict: missing keys [{string.Join(", ", missing)}], unexpected " +
                    $"keys [{string.Join(", ", unexpected)}].");
        }
        // Check every shape before copying anything, so a failed load leaves the model as it was.
        foreach (var (name, t) in state)
            if (mine.TryGetValue(name, out var p) && !p.Shape.AsSpan().SequenceEqual(t.Shape))
                throw new ArgumentException($"LoadStateDict: '{name}' has shape {Shapes.Format(t.Shape)} in the " +
                    $"state but {Shapes.Format(p.Shape)} in the model.");
        foreach (var (name, t) in state)
            if (mine.TryGetValue(name, out var p)) t.Data.CopyTo(p.Data);
    }

    /// <summary>
    /// Adds the generators this module draws from itself while training (a dropout's masks), if any; the default has
    /// none. A checkpoint keeps their states so a resumed run draws the same masks (<see cref="Generators"/>), and
    /// gradient checkpointing replays them (<see cref="CollectGenerators"/>), every step, so this must not allocate.
    /// </summary>
    protected virtual void AddOwnGenerators(List<TorchGenerator> into) { }

    /// <summary>
    /// Refills <paramref name="into"/> with the generators of this tree, in module order (a generator shared by two
    /// modules appears twice), without allocating once the list has grown: what a checkpointed block saves before its
    /// forward and restores before its recomputation, every step.
    /// </summary>
    internal void CollectGenerators(List<TorchGenerator> into)
    {
        into.Clear();
        AddGeneratorsOfTree(into);
    }

    /// <summary>True when a parameter of this tree takes a gradient; a walk that allocates nothing (a checkpointed
    /// block with nothing to train is run plainly, PyTorch's checkpoint output of a frozen block needs no
    /// grad).</summary>
    internal bool AnyParameterRequiresGrad()
    {
        foreach (var p in _parameters) if (p.Value.RequiresGrad) return true;
        foreach (var child in _children) if (child.Value.AnyParameterRequiresGrad()) return true;
        return false;
    }

    private void AddGeneratorsOfTree(List<TorchGenerator> into)
    {
        AddOwnGenerators(into);
        foreach (var child in _children) child.Value.AddGeneratorsOfTree(into);
    }

    /// <summary>Every distinct generator the modules of this tree draw from while training, in module order.</summary>
    public IReadOnlyList<TorchGenerator> Generators()
    {
        var all = new List<TorchGenerator>();
        CollectGenerators(all);
        return all.Distinct(ReferenceEqualityComparer.Instance).Cast<TorchGenerator>().ToList();
    }

    /// <summary>The file a checkpoint keeps a plain model's trainable weights in
    /// (<see cref="SerializeTrainable"/>).</summary>
    public const string TrainableWeightsFileName = "model.safetensors";

    /// <summary>
    /// What a training checkpoint keeps of this model, as files to write side by side: by default
    /// <see cref="TrainableWeightsFileName"/> with the trainable parameters under <c>state_dict</c> names. A model that
    /// saves differently overrides this and <see cref="LoadTrainable"/> (a PEFT model writes its adapter as PEFT does),
    /// so the training loop never needs to know which kind of model it trains.
    /// </summary>
    public virtual IReadOnlyList<(string FileName, byte[] Bytes)> SerializeTrainable()
    {
        var tensors = NamedParameters().Where(p => p.Value.RequiresGrad)
            .ToDictionary(p => p.Key, p => (Tensor)p.Value, StringComparer.Ordinal);
        return [(TrainableWeightsFileName,
            SafeTensors.Serialize(tensors, new Dictionary<string, string> { ["format"] = "pt" }))];
    }

    /// <summary>
    /// Copies weights written by <see cref="SerializeTrainable"/> back from <paramref name="directory"/>; every name
    /// and shape is checked before anything changes.
    /// </summary>
    /// <exception cref="InvalidDataFormatException">The file is malformed or a tensor does not belong to the model
    /// (named).</exception>
    public virtual void LoadTrainable(string directory)
    {
        string path = Path.Combine(directory, TrainableWeightsFileName);
        var targets = new List<(Tensor Target, Tensor Source)>();
        var mine = StateDict();
        foreach (var (key, t) in SafeTensors.Read(path).Tensors)
        {
            targets.Add((FindForLoad(mine, key, t, path, key), t));
            FiniteValues.Require(t.Data, path, key);
        }
        foreach (var (target, source) in targets) source.Data.CopyTo(target.Data);
    }

    /// <summary>The parameter <paramref name="name"/> of <paramref name="mine"/> that file tensor
    /// <paramref name="key"/> loads into, shape checked.</summary>
    /// <exception cref="InvalidDataFormatException">No such parameter, or another shape (both named).</exception>
    protected static Tensor FindForLoad(Dictionary<string, Tensor> mine, string name, Tensor t, string path, string key)
    {
        ArgumentNullException.ThrowIfNull(mine);
        ArgumentNullException.ThrowIfNull(t);
        if (!mine.TryGetValue(name, out var target))
            throw new InvalidDataFormatException(path, key, $"no parameter '{name}' in the model.");
        if (!target.Shape.AsSpan().SequenceEqual(t.Shape))
            throw new InvalidDataFormatException(path, key,
                $"shape {Shapes.Format(t.Shape)} in the file but {Shapes.Format(target.Shape)} in the model.");
        return target;
    }

    private static string Join(string prefix, string name) => prefix.Length == 0 ? name : prefix + "." + name;

    private static void CheckName(string name)
    {
        if (string.IsNullOrEmpty(name) || name.Contains('.'))
            throw new ArgumentException($"Module: '{name}' is not a valid name (non-empty, no dots).");
    }
}
