namespace LoRA.Managed.Training;

/// <summary>The optimiser <see cref="Trainer"/> builds (HF's <c>optim</c>).</summary>
public enum OptimizerType
{
    /// <summary><c>torch.optim.AdamW</c> (HF's default <c>adamw_torch</c>): decoupled weight decay, not applied to 1-D
    /// parameters.</summary>
    AdamW,

    /// <summary><c>torch.optim.Adam</c>: weight decay, if any, is L2 added to every gradient (the blog's
    /// optimiser).</summary>
    Adam,
}

/// <summary>The learning-rate schedule (HF's <c>lr_scheduler_type</c>); every one warms up linearly first when warm-up
/// steps are set.</summary>
public enum LrSchedulerType
{
    /// <summary>HF's <c>linear</c>: warm-up, then linear decay to 0 at the last step (HF's default).</summary>
    Linear,

    /// <summary>HF's <c>cosine</c>: warm-up, then half a cosine down to 0 at the last step.</summary>
    Cosine,

    /// <summary>HF's <c>constant_with_warmup</c> (plain <c>constant</c> when there is no warm-up).</summary>
    Constant,
}

/// <summary>When to evaluate or save (HF's <c>IntervalStrategy</c>).</summary>
public enum IntervalStrategy
{
    /// <summary>Never (HF's <c>"no"</c>).</summary>
    No,

    /// <summary>Every N optimiser steps (HF's <c>"steps"</c>).</summary>
    Steps,

    /// <summary>At the end of every epoch (HF's <c>"epoch"</c>).</summary>
    Epoch,
}
