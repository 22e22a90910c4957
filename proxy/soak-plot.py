#!/usr/bin/env python3
"""Plots a soak run (proxy/soak.sh): RSS, request rate and p99 over time, from samples.csv,
into soak.png beside it. Usage: soak-plot.py OUT_DIR"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

out = sys.argv[1]
rows = list(csv.DictReader(open(f"{out}/samples.csv")))
if not rows:
    sys.exit("soak-plot: no samples")
t = [float(r["t_s"]) / 60 for r in rows]
series = [
    ("RSS (MiB)", [float(r["rss_kib"]) / 1024 for r in rows]),
    ("requests / s", [float(r["requests_per_s"]) for r in rows]),
    ("p99, plain requests (ms)", [float(r["p99_ms"]) for r in rows]),
    ("open descriptors", [float(r["fds"]) for r in rows]),
]
fig, axes = plt.subplots(len(series), 1, sharex=True, figsize=(9, 9))
for ax, (label, ys) in zip(axes, series):
    ax.plot(t, ys, linewidth=1)
    ax.set_ylabel(label)
    ax.grid(True, alpha=0.3)
    ax.set_ylim(bottom=0)
axes[-1].set_xlabel("minutes")
fig.suptitle("ai-api-proxy soak: every 10 s")
fig.tight_layout()
fig.savefig(f"{out}/soak.png", dpi=80)
