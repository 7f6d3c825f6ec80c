# OpenBLAS through numpy on the shapes of `lora bench` (QuickBench.Shapes): the comparison of docs/07-performance.md.
# Usage: OPENBLAS_NUM_THREADS=1 OPENBLAS_CORETYPE=SkylakeX /usr/bin/python3 benchmarks/pytorch/numpy_gemm.py
# Each product is timed as np.matmul on transposed views (no copy), best of at least 5 runs and 0.3 s, as QuickBench
# times ours. numpy adds its own call overhead (about a microsecond), which matters only for the 10-wide products.
import os, time
import numpy as np

def shapes():
    for i, o in [(784, 512), (512, 256), (256, 10)]:
        yield 64, i, o, False, True    # y = x·Wᵀ
        yield o, 64, i, True, False    # dW = dyᵀ·x
        yield 64, o, i, False, False   # dx = dy·W
    for s in (256, 512, 1024):
        yield s, s, s, False, False

rng = np.random.default_rng(42)
print(f"OpenBLAS through numpy {np.__version__}, OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, "
      f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}")
print("| M×K×N op | GFLOP/s |")
print("|---|---:|")
for m, k, n, ta, tb in shapes():
    a = rng.uniform(-1, 1, (k, m) if ta else (m, k)).astype(np.float32)
    b = rng.uniform(-1, 1, (n, k) if tb else (k, n)).astype(np.float32)
    opa, opb = (a.T if ta else a), (b.T if tb else b)
    c = np.empty((m, n), np.float32)
    np.matmul(opa, opb, out=c)
    best, spent, reps = float("inf"), 0.0, 0
    while reps < 5 or spent < 0.3:
        t0 = time.perf_counter()
        np.matmul(opa, opb, out=c)
        dt = time.perf_counter() - t0
        best, spent, reps = min(best, dt), spent + dt, reps + 1
    op = ("T" if ta else "N") + ("T" if tb else "N")
    print(f"| {m}×{k}×{n} {op} | {2.0 * m * n * k / best / 1e9:.1f} |")
