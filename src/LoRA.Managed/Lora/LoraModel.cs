using LoRA.Managed.IO;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Lora;

/// <summary>Entry points that put LoRA adapters on a model (PEFT's <c>get_peft_model</c> and <c>PeftModel.from_pretrained</c>).</summary>
public static class LoraModel
{
    /// <summary>The adapter name PEFT uses when none is given.</summary>
    public const string DefaultAdapterName = "default";

    /// <summary>
    /// Checks <paramref name="config"/> against <paramref name="model"/> without changing anything: the values, every
    /// target and <c>modules_to_save</c> entry resolved to a module of the right kind, the rank within each target's
    /// shape. The one place a LoRA configuration is validated; <see cref="Wrap"/> runs it first.
    /// </summary>
    /// <exception cref="ArgumentException">Something does not fit; the message names the field or the module.</exception>
    public static void Validate(Module model, LoraConfig config, string adapterName = DefaultAdapterName) =>
        InjectionPlan.Create(model, config, adapterName);

    /// <summary>
    /// Wraps <paramref name="model"/>: every Linear matched by <see cref="LoraConfig.TargetModules"/> is replaced
    /// (via <see cref="Module.ReplaceChild"/>) by a <see cref="LoraLinear"/> carrying adapter
    /// <paramref name="adapterName"/>; all other parameters are frozen except the biases and modules to save the
    /// config names. Random draws (initialisation in module order, then dropout masks) come from
    /// <paramref name="generator"/>. Targets and ranks are validated before the model changes.
    /// </summary>
    /// <exception cref="ArgumentException">A target matches nothing (the message lists the modules), matches a non-Linear, or the rank does not fit.</exception>
    public static PeftModel Wrap(Module model, LoraConfig config, TorchGenerator generator, string adapterName = DefaultAdapterName)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(generator);
        if (model is PeftModel) throw new ArgumentException("LoraModel.Wrap: the model is already a PeftModel; use PeftModel.AddAdapter for another adapter.");
        InjectionPlan.Create(model, config, adapterName);   // validate before the constructor freezes anything
        var peft = new PeftModel(model);
        peft.AddAdapter(adapterName, config, generator);
        return peft;
    }

    /// <summary>PEFT-style alias of <see cref="Wrap"/>.</summary>
    public static PeftModel GetPeftModel(Module model, LoraConfig config, TorchGenerator generator, string adapterName = DefaultAdapterName) =>
        Wrap(model, config, generator, adapterName);

    /// <summary>
    /// Restores an adapter saved by <see cref="PeftModel.SaveAdapter"/> (or by PEFT) onto <paramref name="baseModel"/>.
    /// Both files are read and every tensor's name and shape checked against the model before it changes.
    /// If the adapter records the checksum of the base it was trained on and <paramref name="verifyBaseChecksum"/>
    /// is true (the default), a different base is refused. A PiSSA adapter is restored onto the original model:
    /// the residual base is recomputed, as PEFT does for <c>init_lora_weights="pissa"</c>.
    /// </summary>
    /// <exception cref="InvalidDataFormatException">A file is malformed, or a tensor is missing, unexpected or does not fit (named).</exception>
    /// <exception cref="InvalidOperationException">The base model's checksum differs from the one recorded.</exception>
    public static PeftModel LoadAdapter(Module baseModel, string directory, TorchGenerator? generator = null,
        bool verifyBaseChecksum = true, string adapterName = DefaultAdapterName) =>
        AdapterFiles.Load(baseModel, directory, generator ?? new TorchGenerator(0), verifyBaseChecksum, adapterName);
}
