#!/usr/bin/env bash
# Side-by-side training-step throughput of carve and PyTorch twins of the same models (scripts/pytorch_twins).
#
#   bash scripts/compare-pytorch.sh [--rounds 3] [--steps 20] [--warmup 3] [--threads 2]
#        [--models m1,m2,causalvae,dear,sparsity] [--carve PATH_TO_BINARY] [--out bench-out]
#        [--optimizer best|adam|adam-fused]
#
# Builds carve in release (unless --carve is given) and a Python venv with torch and numpy ($CARVE_BENCH_VENV,
# default .venv-bench/ at the repository root; reused when torch imports there; extra pip arguments, e.g. a CPU
# wheel index, from $CARVE_BENCH_PIP_ARGS). Each round runs every model on both sides, alternating which side
# goes first, so slow drift of the machine hits both. Prints a Markdown table of the median samples/s over the
# rounds and writes it, the raw JSON lines and each run's log under --out. Run it on an otherwise idle machine:
# with T threads on T busy cores both sides lose far more than their share.
set -euo pipefail

die() { echo "compare-pytorch: $*" >&2; exit 1; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TWINS="$ROOT/scripts/pytorch_twins"
ROUNDS=3 STEPS=20 WARMUP=3 THREADS=2 OPTIMIZER=best
MODELS=m1,m2,causalvae,dear,sparsity
CARVE="" OUT="$ROOT/bench-out"

while [[ $# -gt 0 ]]; do
    case "$1" in
        --rounds) ROUNDS=${2:?}; shift 2 ;;
        --steps) STEPS=${2:?}; shift 2 ;;
        --warmup) WARMUP=${2:?}; shift 2 ;;
        --threads) THREADS=${2:?}; shift 2 ;;
        --models) MODELS=${2:?}; shift 2 ;;
        --carve) CARVE=${2:?}; shift 2 ;;
        --out) OUT=${2:?}; shift 2 ;;
        --optimizer) OPTIMIZER=${2:?}; shift 2 ;;
        -h|--help) sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done
for n in ROUNDS STEPS THREADS; do
    [[ ${!n} =~ ^[1-9][0-9]*$ ]] || die "--${n,,} must be a positive integer, got '${!n}'"
done
[[ $WARMUP =~ ^[0-9]+$ ]] || die "--warmup must be a non-negative integer, got '$WARMUP'"
[[ $OPTIMIZER =~ ^(best|adam|adam-fused)$ ]] || die "--optimizer must be best, adam or adam-fused, got '$OPTIMIZER'"

config_of() {
    case "$1" in
        m1) echo configs/betavae/pendulum.ron ;;
        m2) echo configs/vae/pendulum_conv64.ron ;;
        causalvae) echo configs/causalvae/pendulum.ron ;;
        dear) echo configs/dear/pendulum.ron ;;
        sparsity) echo configs/sparsity/action_nontrivial.ron ;;
        *) return 1 ;;
    esac
}
IFS=, read -r -a MODEL_LIST <<< "$MODELS"
[[ ${#MODEL_LIST[@]} -gt 0 ]] || die "--models is empty"
for m in "${MODEL_LIST[@]}"; do
    config_of "$m" > /dev/null || die "unknown model '$m' (known: m1, m2, causalvae, dear, sparsity)"
done

# --- Python venv with torch ---------------------------------------------------------------------------------
VENV=${CARVE_BENCH_VENV:-$ROOT/.venv-bench}
PY="$VENV/bin/python"
if [[ -x $PY ]] && "$PY" -c 'import torch, numpy' 2> /dev/null; then
    echo "compare-pytorch: reusing $VENV" >&2
else
    command -v python3 > /dev/null || die "python3 not found: install Python 3 (e.g. apt-get install python3 python3-venv)"
    if [[ ! -x $PY ]]; then
        echo "compare-pytorch: creating $VENV" >&2
        python3 -m venv "$VENV" || die "python3 -m venv failed: install the venv module (e.g. apt-get install python3-venv)"
    fi
    "$PY" -m pip --version > /dev/null 2>&1 || "$PY" -m ensurepip --upgrade > /dev/null 2>&1 \
        || die "pip is missing in $VENV and ensurepip failed: install pip (e.g. apt-get install python3-pip python3-venv)"
    echo "compare-pytorch: pip install torch numpy into $VENV" >&2
    # shellcheck disable=SC2086  # CARVE_BENCH_PIP_ARGS is a list of words
    "$PY" -m pip install --disable-pip-version-check ${CARVE_BENCH_PIP_ARGS:-} torch numpy >&2 \
        || die "pip install torch numpy failed (see above)"
    "$PY" -c 'import torch, numpy' || die "torch does not import in $VENV after installing it"
fi

# --- carve --------------------------------------------------------------------------------------------------
if [[ -z $CARVE ]]; then
    command -v cargo > /dev/null || die "cargo not found: install Rust, or pass --carve PATH_TO_BINARY"
    echo "compare-pytorch: cargo build --release -p carve-runner" >&2
    (cd "$ROOT" && cargo build --release -p carve-runner >&2) || die "cargo build failed"
    CARVE="${CARGO_TARGET_DIR:-$ROOT/target}/release/carve"
    [[ $CARVE = /* ]] || CARVE="$ROOT/$CARVE"
fi
[[ -x $CARVE ]] || die "carve binary '$CARVE' is not executable"
CARVE=$(cd "$(dirname "$CARVE")" && pwd)/$(basename "$CARVE")

mkdir -p "$OUT/logs"
OUT=$(cd "$OUT" && pwd)
RAW="$OUT/raw.jsonl"
: > "$RAW"

# Runs one side of one model; appends {"round", "model", "config", "side", "result"} to $RAW (result null and a
# message on stderr when the run fails or prints no JSON).
FAILED=0
run_side() {
    local side=$1 model=$2 round=$3 config log json
    config=$(config_of "$model")
    log="$OUT/logs/$side-$model-r$round"
    local cmd
    if [[ $side == pytorch ]]; then
        cmd=("$PY" "$TWINS/bench.py" --model "$model" --steps "$STEPS" --warmup "$WARMUP"
             --threads "$THREADS" --optimizer "$OPTIMIZER")
    else
        cmd=("$CARVE" bench "$config" --steps "$STEPS" --warmup "$WARMUP" --threads "$THREADS" --json)
    fi
    echo "compare-pytorch: round $round, $model, $side" >&2
    json=""
    if (cd "$ROOT" && "${cmd[@]}") > "$log.out" 2> "$log.err"; then
        # The last line that is a JSON object: anything else on stdout is ignored.
        json=$(grep -E '^\s*\{' "$log.out" | tail -n 1 || true)
    fi
    if [[ -z $json ]] || ! "$PY" -c 'import json, sys; json.loads(sys.argv[1])["samples_per_sec"]' "$json" 2> /dev/null; then
        echo "compare-pytorch: $side $model round $round failed or printed no JSON with samples_per_sec; see $log.err and $log.out" >&2
        FAILED=1
        json=null
    fi
    "$PY" -c 'import json, sys; r, m, c, s, res = sys.argv[1:]; print(json.dumps({"round": int(r), "model": m, "config": c, "side": s, "result": json.loads(res)}))' \
        "$round" "$model" "$config" "$side" "$json" >> "$RAW"
}

for ((r = 1; r <= ROUNDS; r++)); do
    for m in "${MODEL_LIST[@]}"; do
        if ((r % 2)); then
            run_side carve "$m" "$r"; run_side pytorch "$m" "$r"
        else
            run_side pytorch "$m" "$r"; run_side carve "$m" "$r"
        fi
    done
done

"$PY" "$TWINS/summarise.py" "$RAW" "$THREADS" "$(nproc)" | tee "$OUT/table.md"
echo "compare-pytorch: raw lines in $RAW, table in $OUT/table.md" >&2
((FAILED == 0)) || die "some runs failed (their cells show n/a)"
