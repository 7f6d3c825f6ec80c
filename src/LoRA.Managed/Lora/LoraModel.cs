using LoRA.Managed.IO;
using LoRA.Managed.Nn;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Lora;

/// <summary>Entry points that put LoRA adapters on a model (PEFT's <c>get_peft_model</c>); loading is
/// <see cref="PeftModel.FromPretrained"/>.</summary>
public static class LoraModel
{
    /// <summary>The adapter name PEFT uses when none is given.</summary>
    public const string DefaultAdapterName = "default";

    /// <summary>
    /// Checks <paramref name="config"/> against <paramref name="model"/> without changing anything: the values, every
    /// target and <c>modules_to_save</c> entry resolved to a module of the right kind, the rank within each target's
    /// shape. The one place a LoRA configuration is validated; <see cref="GetPeftModel"/> runs it first.
    /// </summary>
    /// <exception cref="ArgumentException">Something does not fit; the message names the field or the
    /// module.</exception>
    public static void Validate(Module model, LoraConfig config, string adapterName = DefaultAdapterName) =>
        InjectionPlan.Create(model, config, adapterName);

    /// <summary>
    /// PEFT's <c>get_peft_model</c>: wraps <paramref name="model"/>: every Linear matched by
    /// <see cref="LoraConfig.TargetModules"/> is replaced (via <see cref="Module.ReplaceChild"/>) by a
    /// <see cref="LoraLinear"/> carrying adapter <paramref name="adapterName"/>; all other parameters are frozen except
    /// the biases and modules to save the config names. Random draws (initialisation in module order, then dropout
    /// masks) come from <paramref name="generator"/>. Targets and ranks are validated before the model changes.
    /// </summary>
    /// <exception cref="ArgumentException">A target matches nothing (the message lists the modules), matches a
    /// non-Linear, or the rank does not fit.</exception>
    public static PeftModel GetPeftModel(Module model, LoraConfig config, TorchGenerator generator,
        string adapterName = DefaultAdapterName)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(generator);
        if (model is PeftModel)
            throw new ArgumentException("LoraModel.GetPeftModel: the model is already a PeftModel; use " +
                "PeftModel.AddAdapter for another adapter.");
        InjectionPlan.Create(model, config, adapterName);   // validate before the constructor freezes anything
        var peft = new PeftModel(model);
        peft.AddAdapter(adapterName, config, generator);
        return peft;
    }
}
