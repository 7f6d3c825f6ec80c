#!/usr/bin/env python3
"""PyTorch twin of `lm-demo`'s GPT training step, for the ratio issue 20 asks for: the same character GPT as
QuickBench.CreateGptTrainStep (vocabulary 96, 2 layers, 4 heads, width 64, context 64, batch 32, no dropout; q/k/v/o
projections with biases, LayerNorm, tanh GELU, an untied lm_head without bias), random tokens, cross-entropy over
every position, backward, AdamW (lr 3e-3, weight decay 0.1), zero_grad(set_to_none=True). Prints the median ms per
step over 200 steps after 30 of warm-up, at each thread count, as one JSON line per count.

  /usr/bin/python3 benchmarks/pytorch/gpt_step.py [--threads 1,2]

Ours, side by side in one run (alternating 1 and 2 threads):
  dotnet run -c Release --project benchmarks/LoRA.Managed.Benchmarks -- --scaling --threads 1,2
"""
import json
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

V, T, L, H, C, B = 96, 64, 2, 4, 64, 32


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.q_proj, self.k_proj, self.v_proj, self.o_proj = (nn.Linear(C, C) for _ in range(4))
        self.register_buffer("mask", torch.tril(torch.ones(T, T, dtype=torch.bool)))

    def forward(self, x):
        b, t, c = x.shape
        hs = c // H
        q, k, v = (p(x).view(b, t, H, hs).transpose(1, 2) for p in (self.q_proj, self.k_proj, self.v_proj))
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))
        att = att.masked_fill(~self.mask[:t, :t], float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(b, t, c)
        return self.o_proj(y)


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1, self.attn, self.ln_2 = nn.LayerNorm(C), Attention(), nn.LayerNorm(C)
        self.fc1, self.fc2 = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.fc2(F.gelu(self.fc1(self.ln_2(x)), approximate="tanh"))


class Gpt(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(V, C), nn.Embedding(T, C)
        self.blocks = nn.Sequential(*[Block() for _ in range(L)])
        self.ln_f, self.lm_head = nn.LayerNorm(C), nn.Linear(C, V, bias=False)

    def forward(self, ids):
        x = self.wte(ids) + self.wpe(torch.arange(ids.shape[1]))
        return self.lm_head(self.ln_f(self.blocks(x))).view(-1, V)


def main():
    threads = [1, 2]
    if "--threads" in sys.argv:
        threads = [int(t) for t in sys.argv[sys.argv.index("--threads") + 1].split(",")]
    torch.manual_seed(7)
    model = Gpt()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.1)
    ids = torch.randint(0, V, (B, T))
    targets = torch.randint(0, V, (B * T,))

    def step():
        loss = F.cross_entropy(model(ids), targets)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for t in threads:
        torch.set_num_threads(t)
        for _ in range(30):
            step()
        times = []
        for _ in range(200):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
        times.sort()
        print(json.dumps({"threads": t, "torch": torch.__version__, "median_ms": round(times[len(times) // 2] * 1e3, 3),
                          "best_ms": round(times[0] * 1e3, 3)}))


if __name__ == "__main__":
    main()
