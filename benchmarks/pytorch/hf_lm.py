#!/usr/bin/env python3
"""PyTorch peer of `LoRA.Managed.Benchmarks --hf`: a GPT-2-small-sized model (124M, random weights) scored, LoRA
fine-tuned (r=8 on c_attn, i.e. q and v with k, as PEFT's GPT-2 default) and greedily decoded with a KV cache, using
the twins of tests/fixtures/hf/make_fixtures.py. Prints one JSON line: tokens_per_second and peak_rss_mb (VmHWM).

  /usr/bin/python3 benchmarks/pytorch/hf_lm.py make /tmp/gpt2-124m
  /usr/bin/python3 benchmarks/pytorch/hf_lm.py make-llama /tmp/tinyllama-1.1b   # TinyLlama-1.1B-shaped, random, BF16
  /usr/bin/python3 benchmarks/pytorch/hf_lm.py make-smol /tmp/hf-smollm2-135m     # SmolLM2-135M-shaped, random, F32
  python3 benchmarks/pytorch/hf_lm.py score|finetune|generate /tmp/gpt2-124m [--threads 2]
  python3 benchmarks/pytorch/hf_lm.py score|finetune /tmp/hf-smollm2-135m [--threads 2]   # a Llama: LoRA on q/k/v
"""
import importlib.util, json, math, os, struct, sys, time
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("twins", os.path.join(HERE, "..", "..", "tests", "fixtures", "hf", "make_fixtures.py"))
tw = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tw)

CONTEXT, SCORE_WINDOWS, FT_STEPS, GEN_PROMPT, GEN_NEW = 256, 8, 6, 16, 64


def peak_rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def make(folder):
    cfg = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": 50257, "n_embd": 768, "n_layer": 12,
           "n_head": 12, "n_positions": 1024, "n_inner": None, "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5,
           "bos_token_id": 50256, "eos_token_id": 50256, "tie_word_embeddings": True}
    os.makedirs(folder, exist_ok=True)
    json.dump(cfg, open(os.path.join(folder, "config.json"), "w"), indent=2)
    g = torch.Generator().manual_seed(124)
    C, I = 768, 3072
    W = {"wte.weight": torch.randn(50257, C, generator=g) * 0.02, "wpe.weight": torch.randn(1024, C, generator=g) * 0.01,
         "ln_f.weight": torch.ones(C), "ln_f.bias": torch.zeros(C)}
    for l in range(12):
        p = f"h.{l}."
        W.update({p + "ln_1.weight": torch.ones(C), p + "ln_1.bias": torch.zeros(C), p + "ln_2.weight": torch.ones(C), p + "ln_2.bias": torch.zeros(C),
                  p + "attn.c_attn.weight": torch.randn(C, 3 * C, generator=g) * 0.02, p + "attn.c_attn.bias": torch.zeros(3 * C),
                  p + "attn.c_proj.weight": torch.randn(C, C, generator=g) * 0.02, p + "attn.c_proj.bias": torch.zeros(C),
                  p + "mlp.c_fc.weight": torch.randn(C, I, generator=g) * 0.02, p + "mlp.c_fc.bias": torch.zeros(I),
                  p + "mlp.c_proj.weight": torch.randn(I, C, generator=g) * 0.02, p + "mlp.c_proj.bias": torch.zeros(C)})
    tw.save_safetensors(os.path.join(folder, "model.safetensors"), W, metadata={"format": "pt"})
    print(f"wrote {folder}: {sum(v.numel() for v in W.values()):,} parameters")


def make_llama(folder):
    """A TinyLlama-1.1B-shaped Llama (random weights, BF16 as TinyLlama's own file), written tensor by tensor so only
    one tensor (at most 32000 × 2048, 262 MB in float32) is ever in Python's memory: for peak-memory measurements."""
    C, I, L, H, KV, V = 2048, 5632, 22, 32, 4, 32000
    cfg = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": C, "intermediate_size": I,
           "num_hidden_layers": L, "num_attention_heads": H, "num_key_value_heads": KV, "vocab_size": V,
           "max_position_embeddings": 2048, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "hidden_act": "silu",
           "tie_word_embeddings": False, "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "bfloat16"}
    os.makedirs(folder, exist_ok=True)
    json.dump(cfg, open(os.path.join(folder, "config.json"), "w"), indent=2)
    D = C // H
    shapes = {"model.embed_tokens.weight": (V, C), "model.norm.weight": (C,), "lm_head.weight": (V, C)}
    for l in range(L):
        p = f"model.layers.{l}."
        shapes.update({p + "input_layernorm.weight": (C,), p + "post_attention_layernorm.weight": (C,),
                       p + "self_attn.q_proj.weight": (C, C), p + "self_attn.k_proj.weight": (KV * D, C),
                       p + "self_attn.v_proj.weight": (KV * D, C), p + "self_attn.o_proj.weight": (C, C),
                       p + "mlp.gate_proj.weight": (I, C), p + "mlp.up_proj.weight": (I, C), p + "mlp.down_proj.weight": (C, I)})
    names = sorted(shapes)
    header, off = {"__metadata__": {"format": "pt"}}, 0
    for n in names:
        size = 2 * math.prod(shapes[n])
        header[n] = {"dtype": "BF16", "shape": list(shapes[n]), "data_offsets": [off, off + size]}
        off += size
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    g = torch.Generator().manual_seed(1100)
    with open(os.path.join(folder, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for n in names:
            t = torch.ones(shapes[n]) if n.endswith("norm.weight") else torch.randn(shapes[n], generator=g) * 0.02
            f.write(t.to(torch.bfloat16).view(torch.int16).numpy().tobytes())
            del t
    print(f"wrote {folder}: {sum(math.prod(s) for s in shapes.values()):,} parameters")


def make_smol(folder):
    """A SmolLM2-135M-shaped Llama (30 layers of 576, 9 query and 3 key/value heads of 64, SwiGLU 1536, the tied
    49152-token table; random normal weights, sigma 0.02 as initializer_range, norms 1), float32: the shapes of
    `LoRA.Managed.Benchmarks --ops --llama`, as a Hub folder both engines load."""
    C, I, L, H, KV, V, D = 576, 1536, 30, 9, 3, 49152, 64
    cfg = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": C, "intermediate_size": I,
           "num_hidden_layers": L, "num_attention_heads": H, "num_key_value_heads": KV, "head_dim": D, "vocab_size": V,
           "max_position_embeddings": 8192, "rms_norm_eps": 1e-5, "rope_theta": 100000.0, "hidden_act": "silu",
           "tie_word_embeddings": True, "bos_token_id": 0, "eos_token_id": 0, "torch_dtype": "float32"}
    os.makedirs(folder, exist_ok=True)
    json.dump(cfg, open(os.path.join(folder, "config.json"), "w"), indent=2)
    g = torch.Generator().manual_seed(135)
    W = {"model.embed_tokens.weight": torch.randn(V, C, generator=g) * 0.02, "model.norm.weight": torch.ones(C)}
    for l in range(L):
        p = f"model.layers.{l}."
        W.update({p + "input_layernorm.weight": torch.ones(C), p + "post_attention_layernorm.weight": torch.ones(C),
                  p + "self_attn.q_proj.weight": torch.randn(H * D, C, generator=g) * 0.02,
                  p + "self_attn.k_proj.weight": torch.randn(KV * D, C, generator=g) * 0.02,
                  p + "self_attn.v_proj.weight": torch.randn(KV * D, C, generator=g) * 0.02,
                  p + "self_attn.o_proj.weight": torch.randn(C, H * D, generator=g) * 0.02,
                  p + "mlp.gate_proj.weight": torch.randn(I, C, generator=g) * 0.02,
                  p + "mlp.up_proj.weight": torch.randn(I, C, generator=g) * 0.02,
                  p + "mlp.down_proj.weight": torch.randn(C, I, generator=g) * 0.02})
    tw.save_safetensors(os.path.join(folder, "model.safetensors"), W, metadata={"format": "pt"})
    print(f"wrote {folder}: {sum(v.numel() for v in W.values()):,} parameters")


def is_llama(cfg):
    return cfg["model_type"] != "gpt2"


def forward_for(cfg, W):
    return (lambda x, lora=None: tw.llama_forward(cfg, W, x, lora)) if is_llama(cfg) else \
        (lambda x, lora=None: tw.gpt2_forward(cfg, W, x, lora))


def load(folder):
    return json.load(open(os.path.join(folder, "config.json"))), tw.load_safetensors(os.path.join(folder, "model.safetensors"))


def ids_for(n, seed=1, vocab=50257):
    return [int(v) for v in torch.randint(0, vocab, (n,), generator=torch.Generator().manual_seed(seed))]


def score(folder):
    cfg, W = load(folder)
    ids = ids_for(CONTEXT * SCORE_WINDOWS, vocab=cfg.get("vocab_size", 50257))
    fwd = forward_for(cfg, W)
    with torch.no_grad():
        tw.mean_nll(fwd, ids[:CONTEXT], CONTEXT)  # warm-up
        t = time.perf_counter()
        nll, n = tw.mean_nll(fwd, ids, CONTEXT)
        dt = time.perf_counter() - t
    return {"mode": "score", "tokens": n, "mean_nll": nll, "tokens_per_second": len(ids) / dt}


def lora_shapes(cfg):
    """(module name, in, out) of each LoRA target: c_attn for GPT-2 (PEFT's default), q/k/v for a Llama."""
    if not is_llama(cfg):
        return [(f"transformer.h.{l}.attn.c_attn", 768, 3 * 768) for l in range(12)]
    C, H = cfg["hidden_size"], cfg["num_attention_heads"]
    KV, D = cfg.get("num_key_value_heads") or H, cfg.get("head_dim") or C // H
    return [(f"model.layers.{l}.self_attn.{m}_proj", C, (H if m == "q" else KV) * D)
            for l in range(cfg["num_hidden_layers"]) for m in "qkv"]


def finetune(folder):
    cfg, W = load(folder)
    g = torch.Generator().manual_seed(3)
    shapes = lora_shapes(cfg)
    A = {t: (torch.rand(8, i, generator=g) * 2 - 1).div(math.sqrt(i)).requires_grad_() for t, i, _ in shapes}
    B = {t: torch.zeros(o, 8, requires_grad=True) for t, _, o in shapes}
    lora = tw.Lora(A, B, 16 / 8)
    opt = torch.optim.AdamW(list(A.values()) + list(B.values()), lr=1e-4, weight_decay=0.0)
    ids = ids_for(CONTEXT * (FT_STEPS + 1) + 1, vocab=cfg.get("vocab_size", 50257))
    fwd = forward_for(cfg, W)

    def step(i):
        w = ids[i * CONTEXT:(i + 1) * CONTEXT + 1]
        logits = fwd(w[:-1], lora)
        loss = F.cross_entropy(logits, torch.tensor(w[1:]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    step(0)  # warm-up
    t = time.perf_counter()
    for i in range(1, FT_STEPS + 1):
        last = step(i)
    dt = time.perf_counter() - t
    return {"mode": "finetune", "steps": FT_STEPS, "context": CONTEXT, "last_loss": last,
            "trainable_params": sum(a.numel() + b.numel() for a, b in zip(A.values(), B.values())),
            "tokens_per_second": FT_STEPS * CONTEXT / dt}


def generate(folder):
    """Greedy decoding with a KV cache: the prompt once, then one position per token (HF's past_key_values)."""
    cfg, W = load(folder)
    if is_llama(cfg):
        sys.exit("hf_lm.py generate: GPT-2 only (score and finetune take a Llama)")
    C, H, L = 768, 12, 12
    D = C // H

    def run(ids, start, cache):
        T = len(ids)
        x = W["wte.weight"][torch.tensor(ids)] + W["wpe.weight"][torch.arange(start, start + T)]
        for l in range(L):
            p = f"h.{l}."
            h = F.layer_norm(x, (C,), W[p + "ln_1.weight"], W[p + "ln_1.bias"], 1e-5)
            q, k, v = torch.addmm(W[p + "attn.c_attn.bias"], h, W[p + "attn.c_attn.weight"]).split(C, dim=-1)
            q, k, v = (t.view(T, H, D).transpose(0, 1) for t in (q, k, v))
            if l in cache:
                k = torch.cat((cache[l][0], k), dim=1)
                v = torch.cat((cache[l][1], v), dim=1)
            cache[l] = (k, v)
            att = q @ k.transpose(-1, -2) / math.sqrt(D)
            if T > 1:
                mask = torch.tril(torch.ones(T, start + T, dtype=torch.bool), diagonal=start)
                att = att.masked_fill(~mask, float("-inf"))
            y = (F.softmax(att, dim=-1) @ v).transpose(0, 1).reshape(T, C)
            x = x + torch.addmm(W[p + "attn.c_proj.bias"], y, W[p + "attn.c_proj.weight"])
            h = F.layer_norm(x, (C,), W[p + "ln_2.weight"], W[p + "ln_2.bias"], 1e-5)
            h = tw.gelu_new(torch.addmm(W[p + "mlp.c_fc.bias"], h, W[p + "mlp.c_fc.weight"]))
            x = x + torch.addmm(W[p + "mlp.c_proj.bias"], h, W[p + "mlp.c_proj.weight"])
        x = F.layer_norm(x[-1:], (C,), W["ln_f.weight"], W["ln_f.bias"], 1e-5)
        return int(torch.argmax(x @ W["wte.weight"].t()))

    prompt = ids_for(GEN_PROMPT)
    with torch.no_grad():
        run(prompt, 0, {})  # warm-up
        cache, out = {}, []
        t = time.perf_counter()
        nxt = run(prompt, 0, cache)
        for i in range(GEN_NEW - 1):
            out.append(nxt)
            nxt = run([nxt], GEN_PROMPT + i, cache)
        out.append(nxt)
        dt = time.perf_counter() - t
    return {"mode": "generate", "new_ids": out, "tokens_per_second": GEN_NEW / dt}


if __name__ == "__main__":
    mode, folder = sys.argv[1], sys.argv[2]
    threads = int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv else 2
    torch.set_num_threads(threads)
    if mode == "make":
        make(folder)
    elif mode == "make-llama":
        make_llama(folder)
    elif mode == "make-smol":
        make_smol(folder)
    else:
        r = {"score": score, "finetune": finetune, "generate": generate}[mode](folder)
        r.update({"engine": "pytorch " + torch.__version__, "threads": threads, "peak_rss_mb": peak_rss_mb()})
        print(json.dumps(r))
