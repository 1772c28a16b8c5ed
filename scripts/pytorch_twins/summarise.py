"""Reads the raw lines of scripts/compare-pytorch.sh and prints the Markdown comparison table.

    python summarise.py RAW_JSONL THREADS NPROC

Each raw line is {"round", "model", "config", "side": "carve"|"pytorch", "result": {...} | null}. Per model and
side the table shows the median samples/s over the rounds that succeeded. Standard library only.
"""

import datetime
import json
import statistics
import sys

# carve bench keys shown when present (they are optional).
EXTRA = [("gflops", "carve GFLOP/s", "{:.1f}"), ("roofline_percent", "carve roofline %", "{:.1f}"),
         ("peak_rss_mb", "carve peak RSS MB", "{:.0f}")]


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def median_of(results, key):
    vals = [r[key] for r in results if isinstance(r.get(key), (int, float))]
    return statistics.median(vals) if vals else None


def fmt(v, pattern="{:.1f}"):
    return "n/a" if v is None else pattern.format(v)


def main():
    path, threads, nproc = sys.argv[1], sys.argv[2], sys.argv[3]
    rows, order = {}, []
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            rec = json.loads(line)
            m = rec["model"]
            if m not in rows:
                rows[m] = {"config": rec["config"], "carve": [], "pytorch": []}
                order.append(m)
            if rec["result"] is not None:
                rows[m][rec["side"]].append(rec["result"])

    torch_versions = sorted({r.get("torch", "?") for m in order for r in rows[m]["pytorch"]})
    extras = [e for e in EXTRA if any(e[0] in r for m in order for r in rows[m]["carve"])]
    head = ["model", "config", "carve samples/s", "PyTorch samples/s", "ratio carve/PyTorch",
            "PyTorch optimizer"] + [e[1] for e in extras]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in order:
        row = rows[m]
        c = median_of(row["carve"], "samples_per_sec")
        p = median_of(row["pytorch"], "samples_per_sec")
        ratio = c / p if c is not None and p else None
        opts = sorted({r.get("optimizer", "?") for r in row["pytorch"]}) or ["n/a"]
        cells = [m, f"`{row['config']}`", fmt(c), fmt(p), fmt(ratio, "{:.2f}"), "/".join(opts)]
        cells += [fmt(median_of(row["carve"], k), pat) for k, _, pat in extras]
        out.append("| " + " | ".join(cells) + " |")
    rounds = max((len(rows[m][s]) for m in order for s in ("carve", "pytorch")), default=0)
    out.append("")
    out.append(
        f"{datetime.datetime.now().astimezone().isoformat(timespec='seconds')}; nproc {nproc}; "
        f"CPU {cpu_model()}; torch {', '.join(torch_versions) or 'n/a'}; threads {threads}; "
        f"median over up to {rounds} rounds; samples/s = batch size / median step time."
    )
    print("\n".join(out))


if __name__ == "__main__":
    main()
