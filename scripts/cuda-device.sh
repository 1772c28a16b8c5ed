#!/usr/bin/env bash
# Builds and exercises `carve --features cuda` on an offline GPU machine, from what
# scripts/cuda-vendor.sh packed into .cuda-carry/ (see there for the device-tool calls). From the
# repo root:
#
#   [UNPACK_ONLY=1] [BUILD_ONLY=1] [SKIP_TESTS=1] bash scripts/cuda-device.sh [STEPS_GPU] [STEPS_CPU]
#
# The tree it builds is the one it sits in. While others edit the checkout, build a snapshot:
#   git archive HEAD | tar -x -C .cuda-carry/src   (then carry .cuda-carry/src and run
#   `cd .cuda-carry/src && bash scripts/cuda-device.sh`; the unpacked parts in /opt stay).
#
# Steps (logged under $OUT, default ./cuda-out):
#   0. every .cuda-carry/p*/*.tar.xz not yet unpacked is unpacked into /opt/carve-cuda (vendored
#      crates, toolchain parts); UNPACK_ONLY=1 stops here;
#   1. toolchain: the machine's cargo if any, else /opt/carve-cuda/rust;
#   2. `cargo build --release --offline -p carve-runner --features cuda`, crates.io replaced by the
#      vendored crates through a `--config` file written here (the default build is untouched);
#   3. `carve train configs/betavae/pendulum.ron` on --device cuda (STEPS_GPU, default 300) and
#      --device cpu (STEPS_CPU, default 50), summaries and the cuda reconstructions copied to $OUT;
#   4. `cargo test --release -p carve --features cuda --lib` (SKIP_TESTS=1 skips it).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
OUT=${OUT:-$ROOT/cuda-out}
mkdir -p "$OUT"
STEPS_GPU=${1:-300}
STEPS_CPU=${2:-50}
CARRY=$ROOT/.cuda-carry
LOG=$OUT/device.log
exec > >(tee -a "$LOG") 2>&1
t0=$(date +%s)
stamp() { echo "[+$(( $(date +%s) - t0 ))s] $*"; }
# Seconds left before DEADLINE (default 570 s after the start: the device tool stops a command at
# 600 s); every phase runs under `timeout $(left)` so that the logs always come back.
DEADLINE=${DEADLINE:-570}
left() { local l=$(( DEADLINE - ($(date +%s) - t0) )); (( l > 1 )) && echo $l || echo 1; }

stamp "machine"
nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv 2>&1
nvcc --version 2>&1 | tail -2
nproc; gcc --version 2>&1 | head -1

DEST=${CARVE_CUDA_DIR:-/opt/carve-cuda}
mkdir -p "$DEST"
for f in "$CARRY"/p*/*.tar.xz; do
    [[ -f $f ]] || continue
    mark=$DEST/.unpacked-$(basename "$f")-$(cksum <"$f" | cut -d' ' -f1)
    [[ -f $mark ]] && continue
    stamp "unpacking $f"
    # A new vendor.tar.xz (Cargo.lock changed) replaces the old crates.
    [[ $(basename "$f") == vendor.tar.xz ]] && rm -rf "$DEST/vendor" "$DEST"/.unpacked-vendor.tar.xz-*
    tar -C "$DEST" -xJf "$f" && touch "$mark" || exit 1
done
ls -a "$DEST"
[[ ${UNPACK_ONLY:-0} == 1 ]] && { stamp "unpack only: done"; exit 0; }

if ! command -v cargo >/dev/null; then
    export PATH=$DEST/rust/bin:$PATH
fi
cargo --version && rustc --version || { echo "no usable toolchain (unpacked: $(ls -a $DEST))"; exit 1; }
[[ -d $DEST/vendor ]] || { echo "no vendored crates in $DEST/vendor"; exit 1; }
cat >/tmp/cuda-vendor.toml <<EOF
[source.crates-io]
replace-with = "vendored-sources"
[source.vendored-sources]
directory = "$DEST/vendor"
EOF

export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d .)}
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
    [[ -d $d ]] && export LD_LIBRARY_PATH=$d:${LD_LIBRARY_PATH:-}
done
export CUDA_PATH=${CUDA_PATH:-/usr/local/cuda}
CARGO=(cargo --config /tmp/cuda-vendor.toml)
# Outside the work tree: a carried folder is replaced whole on each call, a target/ inside it too.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$DEST/target}

stamp "build (CUDA_COMPUTE_CAP=$CUDA_COMPUTE_CAP)"
timeout "$(left)" "${CARGO[@]}" build --release --offline --locked -p carve-runner --features cuda >"$OUT/build.log" 2>&1
rc=$?
tail -30 "$OUT/build.log"
stamp "build rc=$rc"
[[ $rc == 0 ]] || exit $rc
[[ ${BUILD_ONLY:-0} == 1 ]] && { stamp "build only: done"; exit 0; }

train() { # DEVICE STEPS NAME
    stamp "train --device $1 steps=$2"
    rm -rf "/tmp/run-$3"
    local s=$SECONDS
    timeout "$(left)" "$CARGO_TARGET_DIR/release/carve" train configs/betavae/pendulum.ron --device "$1" \
        --set train.steps="$2" --out "/tmp/run-$3" >"$OUT/train-$3.log" 2>&1
    local r=$?
    grep -E "trained|error|Error|panick" "$OUT/train-$3.log" | tail -8
    stamp "train $3 rc=$r, $((SECONDS - s))s in all (data, training, eval, figures)"
    cp "/tmp/run-$3/summary.json" "$OUT/summary-$3.json" 2>/dev/null && cat "$OUT/summary-$3.json"
    [[ $3 == cuda ]] && cp "/tmp/run-$3/figures/reconstructions.png" "$OUT/reconstructions-$3.png"
    return $r
}
train cuda "$STEPS_GPU" cuda
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv 2>&1
train cpu "$STEPS_CPU" cpu

if [[ ${SKIP_TESTS:-0} != 1 ]]; then
    stamp "tests"
    timeout "$(left)" "${CARGO[@]}" test --release --offline --locked -p carve --features cuda --lib >"$OUT/test.log" 2>&1
    rc=$?
    grep -E "^test result|FAILED|panicked|failures:" "$OUT/test.log" | head -30
    stamp "tests rc=$rc"
fi
stamp "done"
