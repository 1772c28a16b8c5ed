"""PyTorch twins of carve training steps, timed like `carve bench`.

    python bench.py --model m1 --steps 20 --warmup 3 --threads 2 [--optimizer best|adam|adam-fused]

Prints one JSON line: model, config, samples_per_sec (batch / median step time), step_ms_median, threads,
optimizer. `best` (the default) times the model with `torch.optim.Adam` and, where this torch build supports it
on the CPU, with `Adam(fused=True)`, each on a freshly built model, and reports the faster.
"""

import argparse
import importlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ left in the source tree

import torch  # noqa: E402

from common import fused_adam_available, summarise, time_steps  # noqa: E402

MODELS = ["m1", "m2", "causalvae", "dear", "sparsity"]


def run(name, fused, steps, warmup, seed):
    twin = importlib.import_module(name)
    torch.manual_seed(seed)
    step, batches = twin.build(fused)
    out = summarise(time_steps(step, batches, warmup, steps), twin.BATCH)
    out["optimizer"] = "adam-fused" if fused else "adam"
    return twin, out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, choices=MODELS)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--optimizer", choices=["best", "adam", "adam-fused"], default="best")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu", help="cpu or cuda: where parameters and batches live")
    args = ap.parse_args()
    if args.steps < 1 or args.warmup < 0 or args.threads < 1:
        ap.error("--steps and --threads must be >= 1, --warmup >= 0")
    torch.set_num_threads(args.threads)
    torch.set_default_device(args.device)

    fused = {"best": [False, True], "adam": [False], "adam-fused": [True]}[args.optimizer]
    if True in fused and not fused_adam_available():
        if args.optimizer == "adam-fused":
            sys.exit("this torch build has no fused Adam on the CPU")
        fused = [False]
    results = [run(args.model, f, args.steps, args.warmup, args.seed) for f in fused]
    twin, best = max(results, key=lambda r: r[1]["samples_per_sec"])
    line = {
        "model": args.model,
        "config": twin.CONFIG,
        "batch_size": twin.BATCH,
        **best,
        "threads": args.threads,
        "steps": args.steps,
        "warmup": args.warmup,
        "torch": torch.__version__,
        "device": args.device,
    }
    if len(results) > 1:
        line["samples_per_sec_by_optimizer"] = {r[1]["optimizer"]: r[1]["samples_per_sec"] for r in results}
    print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
