#!/bin/sh
# Our GEMM (`--quick`, 1 and 2 threads) beside OpenBLAS through numpy (numpy_gemm.py), ROUNDS rounds back to back;
# prints each cell's best over the rounds and the ratio: the OpenBLAS table of docs/07-performance.md.
# Usage (from the repository root, after a Release build; Debian's python3-numpy and libopenblas0-pthread):
#   sh benchmarks/pytorch/blas_compare.sh [ROUNDS]
set -e
rounds=${1:-3}
log=$(mktemp)
for r in $(seq "$rounds"); do
  echo "== round $r $(uptime)" >> "$log"
  dotnet run -c Release --no-build --project benchmarks/LoRA.Managed.Benchmarks -- --quick --threads 1,2 >> "$log"
  for t in 1 2; do
    OPENBLAS_NUM_THREADS=$t OPENBLAS_CORETYPE=SkylakeX /usr/bin/python3 benchmarks/pytorch/numpy_gemm.py >> "$log"
  done
done
echo "== end $(uptime)" >> "$log"
/usr/bin/python3 - "$log" <<'PY'
import re, sys
txt = open(sys.argv[1]).read()
ours, blas, cur = {1: {}, 2: {}}, {1: {}, 2: {}}, None
for line in txt.splitlines():
    if line.startswith("== "):
        print(line)
    m = re.match(r"threads = (\d)", line)
    if m:
        cur = ours[int(m.group(1))]
        continue
    m = re.match(r"OpenBLAS through numpy .*OPENBLAS_NUM_THREADS=(\d)", line)
    if m:
        cur = blas[int(m.group(1))]
        continue
    m = re.match(r"\s+(\d+)\s+(\d+)\s+(\d+)\s+([NT])\s+([NT])\s+([\d.]+)", line)
    if m and cur is not None:
        key = f"{m.group(1)}×{m.group(2)}×{m.group(3)} {m.group(4)}{m.group(5)}"
        cur[key] = max(cur.get(key, 0), float(m.group(6)))
        continue
    m = re.match(r"\| (\S+ \S+) \| ([\d.]+) \|", line)
    if m and cur is not None:
        cur[m.group(1)] = max(cur.get(m.group(1), 0), float(m.group(2)))
print("| M×K×N op | ours, 1 thread | OpenBLAS, 1 | ratio | ours, 2 threads | OpenBLAS, 2 | ratio |")
print("|---|---:|---:|---:|---:|---:|---:|")
for k in ours[1]:
    print(f"| {k} | {ours[1][k]:.1f} | {blas[1][k]:.1f} | {ours[1][k] / blas[1][k]:.2f} "
          f"| {ours[2][k]:.1f} | {blas[2][k]:.1f} | {ours[2][k] / blas[2][k]:.2f} |")
PY
rm -f "$log"
