using LoRA.Managed.Autograd.Ops;
using LoRA.Managed.Tensors;

namespace LoRA.Managed.Autograd;

/// <summary>
/// The differentiable operations, like <c>torch.nn.functional</c>. Each computes its forward with the
/// span kernels and, while grad mode is on and an input requires a gradient, records its backward rule.
/// </summary>
public static class Functional
{
    /// <summary>
    /// <c>y = x·Wᵀ + b</c>; x (…, in), W (out, in), b (out) or null. With <paramref name="weightInOut"/>, W is
    /// (in, out) and <c>y = x·W + b</c> (GPT-2's <c>Conv1D</c>).
    /// </summary>
    public static Tensor Linear(Tensor x, Tensor weight, Tensor? bias = null, bool weightInOut = false) =>
        LinearOp.Apply(x, weight, bias, weightInOut);

    /// <summary><c>max(x·Wᵀ + b, 0)</c> as one op: <see cref="Linear"/> then <see cref="Relu"/>, bit for bit, with the
    /// bias and ReLU applied by the product's threads (what <c>Sequential</c> runs for a Linear followed by a
    /// ReLU).</summary>
    internal static Tensor LinearRelu(Tensor x, Tensor weight, Tensor? bias, bool weightInOut = false) =>
        LinearOp.Apply(x, weight, bias, weightInOut, relu: true);

    /// <summary><c>y = x·Wᵀ + b</c> with a frozen W stored quantised, <c>[out, in]</c> (QLoRA's base layer); no
    /// gradient reaches W.</summary>
    public static Tensor QuantizedLinear(Tensor x, Kernels.QuantizedMatrix weight, Tensor? bias = null) =>
        QuantizedLinearOp.Apply(x, weight, bias);

    /// <summary><c>op(A)·op(B)</c> for matrices; the flags transpose without copying.</summary>
    public static Tensor MatMul(Tensor a, Tensor b, bool transposeA = false, bool transposeB = false) =>
        MatMulOp.Apply(a, b, transposeA, transposeB);

    /// <summary><c>max(x, 0)</c>.</summary>
    public static Tensor Relu(Tensor x) => ReluOp.Apply(x);

    /// <summary><c>a + b</c> (same shape).</summary>
    public static Tensor Add(Tensor a, Tensor b) => AddOp.Apply(a, b);

    /// <summary><c>s·x</c>.</summary>
    public static Tensor Scale(Tensor x, float s) => ScaleOp.Apply(x, s);

    /// <summary>Inverted dropout with probability <paramref name="p"/>, drawing from
    /// <paramref name="generator"/>.</summary>
    public static Tensor Dropout(Tensor x, float p, TorchGenerator generator) => DropoutOp.Apply(x, p, generator);

    /// <summary>The same elements under a new shape.</summary>
    public static Tensor Reshape(Tensor x, params int[] shape) => ReshapeOp.Apply(x, shape);

    /// <summary>
    /// Mean cross-entropy of logits (B, C) against labels in 0..C−1 (<c>F.cross_entropy</c>); rows labelled
    /// <see cref="Kernels.CrossEntropyKernel.IgnoreIndex"/> (−100) are left out of the mean, as PyTorch's
    /// <c>ignore_index</c>.
    /// </summary>
    public static Tensor CrossEntropy(Tensor logits, ReadOnlySpan<int> labels) => CrossEntropyOp.Apply(logits, labels);

    /// <summary>
    /// Embedding lookup (<c>F.embedding</c>): rows of <paramref name="weight"/> (V, C) picked by
    /// <paramref name="ids"/>, which fill <paramref name="idsShape"/> (rank 1–3); the output is <c>idsShape + [C]</c>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">An id is outside 0..V−1 (the message names it and its
    /// position).</exception>
    public static Tensor Embedding(Tensor weight, ReadOnlySpan<int> ids, params int[] idsShape) =>
        EmbeddingOp.Apply(weight, ids, idsShape);

    /// <summary>
    /// <c>block(x)</c> with gradient checkpointing (<c>torch.utils.checkpoint</c>): the block's activations are not
    /// kept for backward but recomputed then (see <c>CheckpointOp</c>). The block must be deterministic (no dropout);
    /// pass a delegate made once, not a new lambda per call, to keep a step free of allocations.
    /// </summary>
    public static Tensor Checkpoint(Func<Tensor, Tensor> block, Tensor x) => CheckpointOp.Apply(block, x);

    /// <summary>As <see cref="Checkpoint(Func{Tensor, Tensor}, Tensor)"/> for a block that draws dropout masks from
    /// <paramref name="generators"/>: their states are saved before the forward and restored for the recomputation,
    /// so it draws the same masks (the models pass each block's, collected by
    /// <c>Module.CollectGenerators</c>).</summary>
    internal static Tensor Checkpoint(Func<Tensor, Tensor> block, Tensor x, List<TorchGenerator> generators) =>
        CheckpointOp.Apply(block, x, generators);

    /// <summary>
    /// As <see cref="Embedding(Tensor, ReadOnlySpan{int}, int[])"/> from a frozen table stored quantised (V, C):
    /// only the picked rows are expanded. Nothing is recorded (the table takes no gradient).
    /// </summary>
    public static Tensor QuantizedEmbedding(Kernels.QuantizedMatrix weight, ReadOnlySpan<int> ids,
        params int[] idsShape) => EmbeddingOp.ApplyQuantized(weight, ids, idsShape);

    /// <summary>Layer normalisation over the last dimension with affine weight and bias (<c>F.layer_norm</c>, eps 1e-5
    /// as torch).</summary>
    public static Tensor LayerNorm(Tensor x, Tensor weight, Tensor bias, float eps = 1e-5f) =>
        LayerNormOp.Apply(x, weight, bias, eps);

    /// <summary>GELU, tanh approximation, as GPT-2 (<c>F.gelu(x, approximate='tanh')</c>).</summary>
    public static Tensor Gelu(Tensor x) => GeluOp.Apply(x);

    /// <summary>
    /// <c>CrossEntropy(Linear(hidden, weight), labels)</c> for a frozen, bias-free head, without ever holding the N×V
    /// logits (see <c>LinearCrossEntropyOp</c>): a language model's training loss at a fraction of the memory.
    /// </summary>
    internal static Tensor LinearCrossEntropy(Tensor hidden, Tensor weight, ReadOnlySpan<int> labels) =>
        LinearCrossEntropyOp.Apply(hidden, weight, labels);

    /// <summary>As <see cref="LinearCrossEntropy(Tensor, Tensor, ReadOnlySpan{int})"/> for a head stored quantised
    /// (<c>[V, C]</c>).</summary>
    internal static Tensor LinearCrossEntropy(Tensor hidden, Kernels.QuantizedMatrix weight,
        ReadOnlySpan<int> labels) => LinearCrossEntropyOp.Apply(hidden, weight, labels);

    /// <summary>
    /// Causally masked softmax over the last dimension of attention scores (…, T, T), applied to
    /// <c>scale·x</c>: row i keeps columns 0..i; the rest get probability 0. With <paramref name="inPlace"/> the result
    /// is written over <paramref name="scores"/> and shares its storage (PyTorch's in-place <c>softmax_</c> style):
    /// only for scores nothing else reads, as in attention, whose backward needs the probabilities alone.
    /// </summary>
    public static Tensor CausalSoftmax(Tensor scores, float scale = 1f, bool inPlace = false) =>
        CausalSoftmaxOp.Apply(scores, scale, inPlace);

    /// <summary>
    /// Batched <c>op(A)·op(B)</c> over equal leading dimensions: (…, M, K) × (…, K, N) → (…, M, N); the flags
    /// transpose each slice's last two dimensions without copying.
    /// </summary>
    public static Tensor BatchedMatMul(Tensor a, Tensor b, bool transposeA = false, bool transposeB = false) =>
        BatchedMatMulOp.Apply(a, b, transposeA, transposeB);

    /// <summary>
    /// Attention's batched products, skipping work on the masked triangle where that pays: with
    /// <paramref name="transposeB"/>, the scores <c>A·Bᵀ</c> (…, T, D) × (…, T, D) → (…, T, T), meaningful on j ≤ i
    /// only (above the diagonal: zeros, or the product's values, never stale memory); without, <c>A·B</c> for A
    /// (…, T, T) lower triangular × (…, T, D) → (…, T, D). Same bits as <see cref="BatchedMatMul"/> on the kept
    /// entries. Requires, as after <see cref="CausalSoftmax"/>, that A (weighted sum) and the scores' gradient be zero
    /// above the diagonal (read inside the diagonal blocks); the gradient A gets above it is meaningless.
    /// </summary>
    public static Tensor CausalBatchedMatMul(Tensor a, Tensor b, bool transposeB = false) =>
        BatchedMatMulOp.Apply(a, b, false, transposeB, causal: true);

    /// <summary>
    /// Causal attention's scores per head, read in place from the projections: q and k (B, T, H·D) give
    /// <c>tril(q_h·k_hᵀ)</c> (B, H, T, T), the masked entries 0. Bitwise the same as splitting the heads with
    /// <see cref="Permute"/> and calling <see cref="CausalBatchedMatMul"/>, without the copies.
    /// </summary>
    public static Tensor CausalHeadScores(Tensor q, Tensor k, int heads) =>
        HeadsCausalMatMulOp.Scores(q, k, heads, heads);

    /// <summary><see cref="CausalHeadScores(Tensor, Tensor, int)"/> for grouped-query attention: k (B, T, H_kv·D),
    /// query head h against key head h / (H / H_kv), as Llama's <c>repeat_kv</c> without the copies. k's gradient
    /// has <c>repeat_kv</c>'s bits when it is fresh; one that already held G gets G + d₀ + d₁ … in turn.</summary>
    public static Tensor CausalHeadScores(Tensor q, Tensor k, int heads, int kvHeads) =>
        HeadsCausalMatMulOp.Scores(q, k, heads, kvHeads);

    /// <summary>
    /// Causal attention's weighted values per head, written in place into the merged layout: p (B, H, T, T) lower
    /// triangular and v (B, T, H_kv·D) give y (B, T, H·D) with <c>y_h = p_h·v_{h / (H / H_kv)}</c> (H_kv = H without
    /// grouped-query attention). Bitwise the same as <see cref="CausalBatchedMatMul"/> on split (and repeated) heads
    /// followed by the merging <see cref="Permute"/>.
    /// </summary>
    public static Tensor CausalHeadValues(Tensor p, Tensor v, int kvHeads) => HeadsCausalMatMulOp.Values(p, v, kvHeads);

    /// <summary>Reorders dimensions into a contiguous copy (<c>x.permute(dims).contiguous()</c>).</summary>
    public static Tensor Permute(Tensor x, params int[] dims) => PermuteOp.Apply(x, dims);

    /// <summary>RMS normalisation over the last dimension with an elementwise weight (Hugging Face's
    /// <c>LlamaRMSNorm</c>).</summary>
    public static Tensor RmsNorm(Tensor x, Tensor weight, float eps) => RmsNormOp.Apply(x, weight, eps);

    /// <summary>SiLU, <c>x·σ(x)</c> (<c>F.silu</c>).</summary>
    public static Tensor Silu(Tensor x) => SiluOp.Apply(x);

    /// <summary>Elementwise <c>a ⊙ b</c> (same shape).</summary>
    public static Tensor Mul(Tensor a, Tensor b) => MulOp.Apply(a, b);

    /// <summary>
    /// SwiGLU, <c>silu(gate) ⊙ up</c> (same shape): a Llama MLP's <c>act_fn(gate_proj(x)) * up_proj(x)</c> as one op,
    /// with the values of <c>Mul(Silu(gate), up)</c> and without holding silu(gate).
    /// </summary>
    public static Tensor SwiGlu(Tensor gate, Tensor up) => SwiGluOp.Apply(gate, up);

    /// <summary>
    /// Rotary position embedding (rotate-half layout) of x (B, T, H, D), token t at position <c>start + t</c>, from
    /// cos/sin tables of (positions, D/2) values.
    /// </summary>
    public static Tensor Rope(Tensor x, float[] cos, float[] sin, int start = 0) => RopeOp.Apply(x, cos, sin, start);

    /// <summary>Grouped-query attention's <c>repeat_kv</c>: (B, H_kv, T, D) → (B, H_kv·n, T, D).</summary>
    public static Tensor RepeatKv(Tensor x, int repeats) => RepeatKvOp.Apply(x, repeats);

    /// <summary>A contiguous slice of the last dimension, <c>x[..., start:start+length]</c>.</summary>
    public static Tensor Narrow(Tensor x, int start, int length) => NarrowOp.Apply(x, start, length);

}
