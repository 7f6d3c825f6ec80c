#!/usr/bin/env python3
"""Runs the PyTorch listings the chapters show beside their C# twins, and checks what their comments claim.

  /usr/bin/python3 docs/samples/python/check_python_listings.py      # Debian's python3-torch (1.13); no PyPI needed

Every ```python block in docs/*.md must be listed in LISTINGS below under its chapter and first line (a docs test,
`DocsTests.PythonListingsHaveACheck`, fails the build when one is not). A listing that uses `transformers` or `peft`,
which cannot be installed here, is compiled but not run; the others run after a prelude that defines what the chapter
assumes (`model`, `loader`), and their commented results are asserted. Prints one line per listing; exit 1 on a failure.
"""
import contextlib, glob, io, os, re, sys, tempfile, timeit
import torch
import torch.nn as nn

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def blog_mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10))


def check_tensors(ns, out):
    x, y = ns["x"], ns["y"]
    assert x.shape == (2, 3) and x.stride() == (3, 1) and x[1, 0] == 40, x
    assert torch.equal(y, torch.tensor([[1., 2], [40, 5]])), y          # the C# sample prints y = [[1, 2], [40, 5]]
    torch.manual_seed(13)
    w = torch.rand(4, 4)                                                   # chapter 5's sample prints W[0] to 4 places
    assert torch.allclose(w[0], torch.tensor([0.0918, 0.4794, 0.8106, 0.0151]), atol=5e-5), w[0]


def check_autograd(ns, out):
    assert float(ns["loss"]) == 6 and torch.equal(ns["h"], torch.tensor([[1., 2]]))
    assert torch.equal(ns["w"].grad, torch.tensor([[2., -4, 6], [2, -4, 6]])), ns["w"].grad
    assert "[[ 2., -4.,  6.]," in out, out


def check_mlp(ns, out):
    model = ns["model"]
    assert sum(p.numel() for p in model.parameters()) == 535_818            # the blog's count, chapter 4's sample
    assert all(p.grad is not None for p in model.parameters())              # one step ran: every layer got a gradient


def check_blog_svd(ns, out):
    A, B, W3 = ns["A"], ns["B"], ns["W3"]
    assert A.shape == (10, 4) and B.shape == (4, 256), (A.shape, B.shape)
    assert A.numel() + B.numel() == 1_064                                   # the blog's adapter: 40 + 1,024
    U, S, Vh = torch.linalg.svd(W3)
    best = U[:, :4] @ torch.diag(S[:4]) @ Vh[:4, :]                          # Eckart–Young: AB is the best rank-4 fit
    assert torch.allclose(A @ B, best, atol=1e-5)


def check_gemm(ns, out):
    assert out.strip() == "True", out


def check_timing(ns, out):
    assert re.fullmatch(r"\d+\.\d GFLOP/s", out.strip()) and ns["best"] > 0, out


def atomic_save_prelude():
    folder = tempfile.mkdtemp()
    path = os.path.join(folder, "state.pt")
    torch.save({"w": torch.zeros(3)}, path)                              # the previous good file
    return {"os": os, "path": path, "state": {"w": torch.arange(3.0)}}


def check_atomic_save(ns, out):
    assert torch.equal(torch.load(ns["path"])["w"], torch.arange(3.0))
    assert os.listdir(os.path.dirname(ns["path"])) == ["state.pt"]      # no stray temporary left behind


def tiny_loader():
    g = torch.Generator().manual_seed(0)
    return [(torch.randint(0, 256, (64, 1, 28, 28), generator=g).float(), torch.randint(0, 10, (64,), generator=g))]


# chapter → {first line of the listing: (prelude, check)}; check None = compile only (needs transformers/peft).
LISTINGS = {
    "01-tensors.md": {"x = torch.tensor([[1., 2, 3], [4, 5, 6]])": ({}, check_tensors)},
    "02-matrix-multiply.md": {"a, b = torch.rand(65, 129), torch.rand(129, 63)": ({}, check_gemm)},
    "03-autograd.md": {"x = torch.tensor([[1., -2, 3]])": ({}, check_autograd)},
    "04-mlp-cross-entropy-adam.md": {
        "model = nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10))":
            (lambda: {"loader": tiny_loader()}, check_mlp)},
    "05-lora.md": {"config = LoraConfig(r=4, lora_alpha=1, target_modules=[\"layers.5\"], init_lora_weights=\"pissa\")": None},
    "06-reproducing-the-blog.md": {"W3, b3 = model[5].weight.detach(), model[5].bias.detach()":
                                   (lambda: {"model": blog_mlp()}, check_blog_svd)},
    "07-performance.md": {"torch.set_num_threads(1)": ({"timeit": timeit}, check_timing)},
    "08-reliability.md": {"tmp = path + \".tmp\"": (atomic_save_prelude, check_atomic_save)},
    "09-hugging-face-models.md": {"from transformers import AutoModelForCausalLM, AutoTokenizer": None},
}


def listings():
    for path in sorted(glob.glob(os.path.join(ROOT, "docs", "*.md"))):
        text = open(path, encoding="utf-8").read()
        for m in re.finditer(r"```python\n(.*?)```", text, re.S):
            yield os.path.basename(path), m.group(1)


def main():
    failures = 0
    for chapter, body in listings():
        first = body.splitlines()[0].split("  #")[0].rstrip()
        entry = LISTINGS.get(chapter, {}).get(first, "unknown")
        try:
            code = compile(body, f"{chapter}:python", "exec")
            if entry == "unknown":
                raise AssertionError("not listed in LISTINGS: add a prelude and a check")
            if entry is None:
                print(f"ok (compiled only: needs transformers/peft) {chapter}: {first}")
                continue
            prelude, check = entry
            ns = {"torch": torch, "nn": nn, **(prelude() if callable(prelude) else prelude)}
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(code, ns)
            check(ns, out.getvalue())
            print(f"ok {chapter}: {first}")
        except Exception as e:  # noqa: BLE001 — report every listing, then fail once
            failures += 1
            print(f"FAIL {chapter}: {first}: {type(e).__name__}: {e}")
    print(f"{failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
