#!/usr/bin/env bash
# Checks the CUDA build of carve from this tree on a machine with nvcc and a GPU:
#
#   1. builds `carve --features cuda` (offline, through scripts/cuda-device.sh with BUILD_ONLY=1 when the
#      crates were packed by scripts/cuda-vendor.sh; a plain `cargo build` when crates.io is reachable);
#   2. trains every shipped config (configs/**/*.ron) 20 steps on CUDA: each must finish;
#   3. trains configs/betavae/pendulum.ron and configs/vae/pendulum_conv64.ron 20 steps on the CPU and on CUDA
#      and compares the loss of every step: the relative difference must stay within TOL (default 0.05;
#      the two devices round differently and candle's CUDA kernels reduce in another order, so the curves
#      separate slowly, but a wrong kernel shows at step 1);
#   4. times `carve bench --device cuda` on M1 and M2, and, when a Python with a CUDA torch is at hand
#      ($CARVE_BENCH_VENV), their PyTorch twins on the GPU (scripts/pytorch_twins/bench.py --device cuda).
#
# Usage, from the repository root:  [TOL=0.05] [STEPS=20] bash scripts/gpu-check.sh
# Logs and the tables go to $OUT (default ./gpu-out). Exit status: 0 when every check passed.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
OUT=${OUT:-$ROOT/gpu-out}
mkdir -p "$OUT"
TOL=${TOL:-0.05}
STEPS=${STEPS:-20}
exec > >(tee -a "$OUT/gpu-check.log") 2>&1
command -v nvidia-smi >/dev/null || { echo "no nvidia-smi: this check needs an NVIDIA GPU"; exit 1; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv

if [[ -d .cuda-carry ]]; then
    BUILD_ONLY=1 OUT=$OUT bash scripts/cuda-device.sh || exit 1
    CARVE=${CARGO_TARGET_DIR:-/opt/carve-cuda/target}/release/carve
else
    cargo build --release -p carve-runner --features cuda >"$OUT/build.log" 2>&1 \
        || { tail -30 "$OUT/build.log"; exit 1; }
    CARVE=${CARGO_TARGET_DIR:-$ROOT/target}/release/carve
fi
failed=0
train() { # CONFIG DEVICE NAME
    rm -rf "/tmp/gpu-check/$3"
    "$CARVE" train "$1" --device "$2" --set train.steps="$STEPS" --set train.log_every=1 \
        --set 'eval.metrics=[]' --out "/tmp/gpu-check/$3" >"$OUT/train-$3.log" 2>&1
}

echo "== every shipped config, $STEPS steps on CUDA"
while read -r cfg; do
    name=$(echo "${cfg#configs/}" | tr / - | sed 's/\.ron$//')
    if train "$cfg" cuda "$name"; then echo "ok      $cfg"; else echo "FAILED  $cfg (log: $OUT/train-$name.log)"; failed=1; fi
done < <(find configs -name '*.ron' | sort)

echo "== CPU against CUDA, loss per step (tolerance $TOL)"
losses() { grep -o '"loss":[-0-9.eE+]*' "/tmp/gpu-check/$1/metrics.jsonl" | cut -d: -f2; }
for cfg in configs/betavae/pendulum.ron configs/vae/pendulum_conv64.ron; do
    n=$(basename "$(dirname "$cfg")")
    train "$cfg" cpu "$n-cpu" && train "$cfg" cuda "$n-cuda" || { echo "FAILED  $cfg: training"; failed=1; continue; }
    worst=$(paste <(losses "$n-cpu") <(losses "$n-cuda") |
        awk '{d = $1 - $2; if (d < 0) d = -d; r = d / ($1 < 0 ? -$1 : $1); if (r > w) w = r} END {print w + 0}')
    if awk -v w="$worst" -v t="$TOL" 'BEGIN {exit !(w <= t)}'; then
        echo "ok      $cfg: largest relative loss difference $worst"
    else
        echo "FAILED  $cfg: largest relative loss difference $worst > $TOL"; failed=1
    fi
done

echo "== throughput on the GPU"
echo "| model | carve samples/s | PyTorch eager samples/s | ratio |" | tee "$OUT/table.md"
echo "|---|---|---|---|" | tee -a "$OUT/table.md"
for pair in "m1 configs/betavae/pendulum.ron" "m2 configs/vae/pendulum_conv64.ron"; do
    set -- $pair
    ours=$("$CARVE" bench "$2" --device cuda --steps 50 --json 2>/dev/null | grep -o '"samples_per_sec":[0-9.]*' | cut -d: -f2)
    theirs=n/a
    if [[ -n ${CARVE_BENCH_VENV:-} && -x $CARVE_BENCH_VENV/bin/python ]]; then
        theirs=$("$CARVE_BENCH_VENV/bin/python" scripts/pytorch_twins/bench.py --model "$1" --device cuda \
            --steps 50 2>/dev/null | tail -1 | grep -o '"samples_per_sec": [0-9.]*' | cut -d' ' -f2)
    fi
    ratio=$(awk -v a="${ours:-0}" -v b="$theirs" 'BEGIN {if (b + 0 > 0) printf "%.2f", a / b; else print "n/a"}')
    echo "| $1 ($2) | ${ours:-failed} | ${theirs:-failed} | $ratio |" | tee -a "$OUT/table.md"
    [[ -n $ours ]] || failed=1
done
echo "gpu-check: $([[ $failed == 0 ]] && echo passed || echo FAILED)"
exit $failed
