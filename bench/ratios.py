#!/usr/bin/env python3
"""Per point: medians of link MiB, time, longest downtime and gangmig CPU for the three
ways, gangmig's ratios to QEMU multifd+zstd and to plain QEMU, gangmig CPU per non-zero
page, and how close gangmig comes to the lower bound after zstd. Usage: ratios.py runs.csv"""
import csv, statistics, sys
from collections import defaultdict

rows = defaultdict(list)
for r in csv.DictReader(open(sys.argv[1])):
    if r["status"] == "ok":
        rows[(r["scenario"], r["point"], r["mode"])].append(r)
med = lambda rs, k: statistics.median(float(r[k]) for r in rs)
points = sorted({(s, p) for s, p, _ in rows}, key=lambda x: (x[0], x[1].rjust(8)))
print("| point | link MiB gang / plain / multifd | time s gang / plain / multifd | longest downtime ms gang / plain / multifd | bytes gang/multifd | time gang/multifd | downtime gang/plain | gangmig CPU-s | CPU µs / non-zero page | link / lower bound after zstd | RAM |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for s, p in points:
    g, d, m = (rows.get((s, p, w), []) for w in ("gang", "direct", "direct-multifd-zstd"))
    if not (g and d and m):
        continue
    mib = lambda rs: med(rs, "link_bytes_kernel") / 2**20
    t = lambda rs: med(rs, "total_time_s")
    dt = lambda rs: med(rs, "max_downtime_ms")
    cpu = med(g, "gangmig_cpu_s")
    pages = med(g, "pages_sent") + med(g, "pages_referenced")
    lbz = med(g, "lower_bound_compressed_bytes") / 2**20 if g[0].get("lower_bound_compressed_bytes") else 0
    ram = "identical %d/%d" % (sum(r["ram"] == "identical" for r in g + d + m), len(g + d + m))
    print(f"| {s} {p} | {mib(g):.1f} / {mib(d):.1f} / {mib(m):.1f} | {t(g):.2f} / {t(d):.2f} / {t(m):.2f} | "
          f"{dt(g):.0f} / {dt(d):.0f} / {dt(m):.0f} | {mib(g)/mib(m):.2f}x | {t(g)/t(m):.2f}x | {dt(g)/dt(d):.2f}x | "
          f"{cpu:.2f} | {cpu*1e6/pages:.1f} | {mib(g)/lbz if lbz else 0:.2f}x | {ram} |")
