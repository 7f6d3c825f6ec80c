#!/bin/sh
# Side by side on a GPT-2-small-sized random model (124M): ours and the PyTorch twin alternately, each mode in its
# own process (so peak_rss_mb is that mode's), ROUNDS rounds. One JSON line per run; compare runs of one round.
# A Llama folder (hf_lm.py make-smol DIR: SmolLM2-135M's shapes) runs score and finetune only (LoRA on q/k/v).
#   sh benchmarks/pytorch/hf_lm_compare.sh [DIR] [ROUNDS] [THREADS]
set -e
DIR=${1:-/tmp/hf-gpt2-124m}
ROUNDS=${2:-2}
THREADS=${3:-2}
HERE=$(cd "$(dirname "$0")/../.." && pwd)
[ -f "$DIR/model.safetensors" ] || /usr/bin/python3 "$HERE/benchmarks/pytorch/hf_lm.py" make "$DIR"
dotnet build "$HERE/benchmarks/LoRA.Managed.Benchmarks" -c Release -v q >/dev/null
OURS="$HERE/benchmarks/LoRA.Managed.Benchmarks/bin/Release/net10.0/LoRA.Managed.Benchmarks.dll"
echo "# $(date -u +%FT%TZ) $(uptime)"
MODES="score finetune generate"
grep -q '"model_type": "gpt2"' "$DIR/config.json" || MODES="score finetune"
for r in $(seq "$ROUNDS"); do
  for mode in $MODES; do
    dotnet "$OURS" --hf "$mode" "$DIR" --threads "$THREADS" | sed 's/"new_ids": \[[^]]*\], //'
    env -u OPENBLAS_L2_SIZE OPENBLAS_CORETYPE=SkylakeX /usr/bin/python3 "$HERE/benchmarks/pytorch/hf_lm.py" "$mode" "$DIR" --threads "$THREADS" | sed 's/"new_ids": \[[^]]*\], //'
  done
done
