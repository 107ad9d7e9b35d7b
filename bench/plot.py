#!/usr/bin/env python3
"""Plots of a `gangmig bench` run: reads DIR/runs.csv, writes DIR/*.png.

usage: bench/plot.py [DIR]   (default results)
One figure per scenario with more than one point: total migration time and bytes on
the link versus the scenario's parameter, for each mode (median, with min-max bars),
plus the page-level lower bound on bytes for gang runs."""
import csv
import statistics
import sys
from collections import defaultdict

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

MODES = ["gang", "direct", "direct-multifd-zstd"]
LABELS = {"gang": "gangmig", "direct": "plain QEMU", "direct-multifd-zstd": "QEMU multifd+zstd"}


def load(path):
    runs = defaultdict(list)  # (scenario, point, mode) -> rows
    order = defaultdict(list)  # scenario -> points in order
    with open(path) as f:
        for row in csv.DictReader(f):
            if row["status"] != "ok" or row["ram"] != "identical":
                continue
            key = (row["scenario"], row["point"], row["mode"])
            runs[key].append(row)
            if row["point"] not in order[row["scenario"]]:
                order[row["scenario"]].append(row["point"])
    return runs, order


def series(runs, scenario, points, mode, field, scale=1.0):
    med, lo, hi = [], [], []
    for p in points:
        vals = [float(r[field]) * scale for r in runs.get((scenario, p, mode), [])]
        if not vals:
            med.append(float("nan")), lo.append(0), hi.append(0)
            continue
        m = statistics.median(vals)
        med.append(m), lo.append(m - min(vals)), hi.append(max(vals) - m)
    return med, [lo, hi]


def plot(runs, order, scenario, outdir):
    points = order[scenario]
    x = list(range(len(points)))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for mode in MODES:
        t, terr = series(runs, scenario, points, mode, "total_time_s")
        b, berr = series(runs, scenario, points, mode, "link_bytes_kernel", 1 / 2**20)
        ax1.errorbar(x, t, yerr=terr, marker="o", capsize=3, label=LABELS[mode])
        ax2.errorbar(x, b, yerr=berr, marker="o", capsize=3, label=LABELS[mode])
    bound, _ = series(runs, scenario, points, "gang", "lower_bound_bytes", 1 / 2**20)
    ax2.plot(x, bound, "k--", label="lower bound (distinct pages)")
    for ax, title in ((ax1, "total migration time (s)"), (ax2, "bytes on the link (MiB)")):
        ax.set_xticks(x, points)
        ax.set_xlabel(scenario)
        ax.set_title(title)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    ax2.legend(fontsize=8)
    fig.tight_layout()
    out = f"{outdir}/{scenario}.png"
    fig.savefig(out, dpi=100)
    print("wrote", out)


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else "results"
    runs, order = load(f"{outdir}/runs.csv")
    for scenario, points in order.items():
        plot(runs, order, scenario, outdir)


if __name__ == "__main__":
    main()
