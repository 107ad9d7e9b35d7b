#!/usr/bin/python3
"""Plots of a `gangmig bench` run: reads DIR/runs.csv, writes DIR/*.png.

usage: bench/plot.py [DIR]   (default results)
One figure per scenario with more than one point: total migration time and bytes on
the link versus the scenario's parameter, for each mode (median, with min-max bars),
plus the page-level lower bounds on bytes for gang runs (distinct pages, and those pages
after zstd: column lower_bound_compressed_bytes, absent from older runs.csv files)."""
import csv
import statistics
import sys
from collections import defaultdict

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

MODES = ["gang", "direct", "direct-multifd-zstd"]
LABELS = {"gang": "gangmig", "direct": "plain QEMU", "direct-multifd-zstd": "QEMU multifd+zstd"}
XLABELS = {"gang-size": "VMs in the gang (512 MiB each)", "link-rate": "link rate (Mbit/s), 4 VMs",
           "busy": "pages re-dirtied per second per VM", "single-size": "size of the single VM"}


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
        vals = [float(r[field]) * scale for r in runs.get((scenario, p, mode), [])
                if r.get(field)]
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
    bound_z, _ = series(runs, scenario, points, "gang", "lower_bound_compressed_bytes", 1 / 2**20)
    if any(b == b and b > 0 for b in bound_z):  # b == b: not NaN
        ax2.plot(x, bound_z, "k:", label="lower bound after zstd")
    for ax, title in ((ax1, "total migration time (s)"), (ax2, "bytes on the link (MiB)")):
        ax.set_xticks(x, points)
        ax.set_xlabel(XLABELS.get(scenario, scenario))
        ax.set_title(title)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    ax2.legend(fontsize=8)
    fig.tight_layout()
    out = f"{outdir}/{scenario}.png"
    fig.savefig(out, dpi=100)
    print("wrote", out)


def cell(vals, prec):
    if not vals:
        return "-"
    return f"{statistics.median(vals):.{prec}f} ({min(vals):.{prec}f}-{max(vals):.{prec}f})"


def table(runs, order, path):
    """Markdown table of medians (min-max) per scenario point and mode, and the
    reductions of gangmig against each baseline (medians)."""
    lines = ["| scenario | point | mode | runs | total time s | max downtime ms | link MiB "
             "| gangmig CPU s | QEMU CPU s |",
             "|---|---|---|---|---|---|---|---|---|"]
    red = ["| scenario | point | link bytes vs direct | vs multifd+zstd | time vs direct "
           "| vs multifd+zstd | link bytes vs lower bound | vs lower bound after zstd |",
           "|---|---|---|---|---|---|---|---|"]
    for scenario, points in order.items():
        for p in points:
            med = {}
            for mode in MODES:
                rows = runs.get((scenario, p, mode), [])
                col = lambda f, k=1.0: [float(r[f]) * k for r in rows]
                lines.append(f"| {scenario} | {p} | {LABELS[mode]} | {len(rows)} | "
                             f"{cell(col('total_time_s'), 2)} | {cell(col('max_downtime_ms'), 0)} | "
                             f"{cell(col('link_bytes_kernel', 1 / 2**20), 1)} | "
                             f"{cell(col('gangmig_cpu_s'), 2)} | {cell(col('qemu_cpu_s'), 1)} |")
                if rows:
                    med[mode] = {f: statistics.median(col(f)) for f in
                                 ("total_time_s", "link_bytes_kernel", "lower_bound_bytes")}
                    zb = [float(r["lower_bound_compressed_bytes"]) for r in rows
                          if r.get("lower_bound_compressed_bytes")]
                    med[mode]["lower_bound_compressed_bytes"] = statistics.median(zb) if zb else 0
            if "gang" in med and "direct" in med and "direct-multifd-zstd" in med:
                g, d, z = med["gang"], med["direct"], med["direct-multifd-zstd"]
                pct = lambda a, b: f"{100 * (1 - a / b):+.0f}%".replace("+", "-", 1) if a < b else f"+{100 * (a / b - 1):.0f}%"
                bound, bound_z = g["lower_bound_bytes"], g["lower_bound_compressed_bytes"]
                vs_z = f"{g['link_bytes_kernel'] / bound_z:.2f}x" if bound_z else "-"
                red.append(f"| {scenario} | {p} | {pct(g['link_bytes_kernel'], d['link_bytes_kernel'])} | "
                           f"{pct(g['link_bytes_kernel'], z['link_bytes_kernel'])} | "
                           f"{pct(g['total_time_s'], d['total_time_s'])} | "
                           f"{pct(g['total_time_s'], z['total_time_s'])} | "
                           f"{100 * (g['link_bytes_kernel'] / bound - 1):+.1f}% | {vs_z} |"
                           if bound else "| - |")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n\nChange of gangmig against each baseline (medians; "
                "negative = gangmig lower):\n\n" + "\n".join(red) + "\n")
    print("wrote", path)


def with_full_rate_point(runs, order):
    """For the link-rate figure only: gang-size point 4 is the same gang on the default
    1000 Mbit/s link, so it is drawn as link-rate point 1000."""
    if "link-rate" not in order or not runs.get(("gang-size", "4", "gang")):
        return runs, order
    if any(r.get("link_mbit", "1000") != "1000" for r in runs[("gang-size", "4", "gang")]):
        return runs, order
    runs, order = dict(runs), defaultdict(list, {k: list(v) for k, v in order.items()})
    for mode in MODES:
        runs[("link-rate", "1000", mode)] = runs.get(("gang-size", "4", mode), [])
    order["link-rate"].append("1000")
    return runs, order


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else "results"
    runs, order = load(f"{outdir}/runs.csv")
    plot_runs, plot_order = with_full_rate_point(runs, order)
    for scenario, points in plot_order.items():
        if len(points) > 1:
            plot(plot_runs, plot_order, scenario, outdir)
    table(runs, order, f"{outdir}/table.md")


if __name__ == "__main__":
    main()
