"""The experiments' figures: one small panel each, drawn from the results rows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from nica.experiments._core import finite, ordered


def new_figure(width: float = 5.5, height: float = 3.6) -> tuple[Any, Any]:
    """A figure with one axis, on the non-interactive backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height))


def _numeric(value: Any) -> float:
    return float(value)


def lines_by_method(
    ax: Any,
    rows: list[dict[str, Any]],
    *,
    x: str = "value",
    y: str = "mcc",
    xlabel: str,
    ylabel: str = "MCC",
    paper: Mapping[str, Mapping[Any, float]] | None = None,
) -> None:
    """Mean of ``y`` over seeds against ``x`` per method, each seed as a faint dot;
    the paper's values (method -> {x: y}) as hollow markers on dashed lines."""
    for i, method in enumerate(ordered(r["method"] for r in rows)):
        mine = [r for r in rows if r["method"] == method]
        xs = sorted({_numeric(r[x]) for r in mine})
        means = [finite(r[y] for r in mine if _numeric(r[x]) == v).mean() for v in xs]
        color = f"C{i}"
        ax.plot(xs, means, "o-", color=color, label=method, markersize=4)
        ax.scatter([_numeric(r[x]) for r in mine], [float(r[y]) for r in mine], s=8, alpha=0.3,
                   color=color, linewidths=0)
        if paper and method in paper:
            px, py = zip(*sorted(paper[method].items()))
            ax.plot(px, py, "--", marker="o", markerfacecolor="none", color=color, alpha=0.6,
                    label=f"{method} (paper)")
    ticks = sorted({_numeric(r[x]) for r in rows})
    if 0 < len(ticks) <= 12:  # a few settings: label each one
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if y == "mcc":
        ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2, loc="lower right")


def strip_by_method(
    ax: Any,
    rows: list[dict[str, Any]],
    *,
    paper: Mapping[str, float] | None = None,
    paper_label: str = "paper",
) -> None:
    """Each method's MCC per seed as dots with the mean as a bar; the published value as
    a short dashed line."""
    methods = ordered(r["method"] for r in rows)
    rng = np.random.default_rng(0)  # jitter only
    for i, method in enumerate(methods):
        values = finite(r["mcc"] for r in rows if r["method"] == method)
        ax.scatter(i + rng.uniform(-0.12, 0.12, values.size), values, s=14, color=f"C{i}", alpha=0.7)
        if values.size:
            ax.hlines(values.mean(), i - 0.25, i + 0.25, color=f"C{i}", linewidth=2)
        if paper and method in paper:
            ax.hlines(paper[method], i - 0.3, i + 0.3, color="k", linestyles="--", linewidth=1,
                      label=paper_label if i == min(j for j, m in enumerate(methods) if m in paper) else None)
    ax.set_xticks(range(len(methods)), methods, fontsize=8)
    ax.set_ylabel("MCC")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3, axis="y")
    if paper:
        ax.legend(fontsize=7)


def groups_by_method(
    ax: Any,
    rows: list[dict[str, Any]],
    *,
    xlabel: str,
    y: str = "mcc",
    ylabel: str = "MCC",
    paper: Mapping[str, Mapping[Any, float]] | None = None,
    paper_label: str = "paper",
) -> None:
    """A group per setting value (categories on the x axis, in first-seen order), a column
    of dots per method in each (one per seed) with the mean as a bar; the paper's values
    (method -> {value: y}) as hollow black diamonds over their method's column."""
    values = ordered(str(r["value"]) for r in rows)
    methods = ordered(r["method"] for r in rows)
    width = 0.8 / max(len(methods), 1)
    rng = np.random.default_rng(0)  # jitter only
    labelled = False
    for i, method in enumerate(methods):
        offset = (i - (len(methods) - 1) / 2) * width
        for j, value in enumerate(values):
            ys = finite(r[y] for r in rows if r["method"] == method and str(r["value"]) == value)
            x = j + offset
            ax.scatter(x + rng.uniform(-0.2, 0.2, ys.size) * width, ys, s=10, alpha=0.6, color=f"C{i}",
                       linewidths=0, label=method if j == 0 else None)
            if ys.size:
                ax.hlines(ys.mean(), x - 0.4 * width, x + 0.4 * width, color=f"C{i}", linewidth=2)
            published = (paper or {}).get(method, {}).get(value)
            if published is not None:
                ax.scatter([x], [published], marker="D", s=28, facecolors="none", edgecolors="k",
                           label=None if labelled else paper_label)
                labelled = True
    ax.set_xticks(range(len(values)), values)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if y == "mcc":
        ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=6, loc="lower left")
