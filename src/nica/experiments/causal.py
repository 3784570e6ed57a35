"""Sec. 5.2 / App. I.2: causal discovery by NonSENS, iVAE against TCL (and the flow) as the unmixing.

Data: :func:`nica.causal.make_causal` (Laplace disturbances, per-segment scales, and in
the ``mean`` variant per-segment means; lower-triangular leaky-ReLU MLP mixing with
1-5 layers, cycled over the data seeds; columns shuffled). Bivariate pairs over the
numbers of segments ``segments``, on "normal" (variance-modulated) and mean-modulated
data; then d = 3-5 variables (``multivariate``) at ``multivariate_segments`` segments.

Method: :class:`nica.causal.NonSENS` with ``"ivae"`` (:class:`nica.IVAE` with its
defaults; ``prior_mean=True`` on mean-modulated data, which a zero-mean prior cannot fit),
``"tcl"`` (:class:`nica.TCL` with its defaults), or, beyond the paper, ``"flow"``
(:class:`nica.IFlow` with its defaults: learned prior mean and scale, exact likelihood;
method ``IFlow``); the full configuration keeps their
default step budgets, the smaller ones cut them. HSIC tests given the segment on the
default test budget, Bonferroni over the d^2 tests at alpha = 0.05.

Each fit is one row. ``score`` is 1 when the order NonSENS reads from the tests
(``order_``: for a pair, the direction whose test of the cause against the effect's
disturbance has the largest p-value) is the true one, else 0; the simulated DAG is
complete, so the order is unique. ``score_name`` also records ``strict``: the answer is
right *and* the tests support it at alpha = 0.05 after the Bonferroni correction (for a
pair, NonSENS's rule: x_i ⊥ s_j and x_j not ⊥ s_i; an undecided answer counts as wrong),
and ``decided``. ``mcc`` is the unmixing's MCC against the disturbances (|s| for TCL,
whose features estimate |s_i|).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nica.causal import NonSENS, make_causal
from nica.experiments._core import Experiment, Task, ordered
from nica.metrics import mean_corr_coef

METHODS = ("iVAE", "TCL", "IFlow")
UNMIXING = {"iVAE": "ivae", "TCL": "tcl", "IFlow": "flow"}
#: data labels in the value column: "normal/48", "mean/48" (pairs), "d3/48" (3 variables)
VALUE = re.compile(r"^(normal|mean|d(\d+))/(\d+)$")


@dataclass(frozen=True)
class CausalConfig:
    """Pairs at ``segments`` (``n_per_segment`` points each) for ``modulations``; d in
    ``multivariate`` at ``multivariate_segments`` with ``multivariate_seeds`` seeds; mixing
    layers cycled over ``layers`` by data seed; ``steps`` per unmixing fit; ``nonsens``:
    NonSENS options (tests)."""

    seeds: int
    segments: tuple[int, ...]
    n_per_segment: int
    steps: int | None  # None: each estimator's default max_steps
    modulations: tuple[str, ...] = ("normal", "mean")
    layers: tuple[int, ...] = (1, 2, 3, 4, 5)
    multivariate: tuple[int, ...] = ()
    multivariate_segments: int = 48
    multivariate_seeds: int = 0
    ivae: dict[str, Any] = field(default_factory=dict)
    tcl: dict[str, Any] = field(default_factory=dict)
    flow: dict[str, Any] = field(default_factory=dict)
    nonsens: dict[str, Any] = field(default_factory=dict)


def parse_value(value: Any) -> tuple[str, int, int]:
    """``"normal/48"`` -> ("normal", 2, 48); ``"d3/48"`` -> ("normal", 3, 48)."""
    match = VALUE.match(str(value))
    if match is None:
        raise ValueError(f"not a causal experiment value: {value!r}")
    kind, d, segments = match.groups()
    return ("normal", int(d), int(segments)) if d else (kind, 2, int(segments))


def outcome(row: dict[str, Any], name: str) -> float:
    """``strict`` or ``decided`` (0/1) from a row's score_name, ``correct`` from its score."""
    if name == "correct":
        return float(row["score"])
    match = re.search(rf"{name}=(\d)", str(row["score_name"]))
    return float(match.group(1)) if match else float("nan")


class Causal(Experiment):
    name = "causal"
    figure = "Sec. 5.2, App. I.2"
    title = "NonSENS causal discovery: iVAE vs TCL (and the flow, IFlow) as the unmixing"
    setting = "data"
    paper = ("paper (App. I.2, pairs, proportion of correct directions): normal data, 48 segments: "
             "iVAE 0.80, TCL 0.71; mean-modulated data: iVAE 0.92, TCL 0")
    paper_values = {("iVAE", "normal"): 0.80, ("TCL", "normal"): 0.71, ("iVAE", "mean"): 0.92,
                    ("TCL", "mean"): 0.0}
    configs = {
        # sized to about 100 fits of ~16 s (one core each) per two methods: iVAE and TCL 6-7 minutes on 5 cores
        "full": CausalConfig(seeds=10, segments=(12, 48), n_per_segment=500, steps=None,
                             multivariate=(3, 4, 5), multivariate_segments=48, multivariate_seeds=4),
        "quick": CausalConfig(seeds=2, segments=(12, 48), n_per_segment=250, steps=1_500,
                              multivariate=(3,), multivariate_segments=24, multivariate_seeds=1),
        "smoke": CausalConfig(seeds=1, segments=(6,), n_per_segment=30, steps=10, layers=(2,),
                              multivariate=(3,), multivariate_segments=6, multivariate_seeds=1,
                              ivae=dict(hidden_dim=16, n_layers=2), tcl=dict(batch_size=64), flow=dict(n_restarts=2),
                              nonsens=dict(max_test_samples=60)),
    }

    def tasks(self, config: CausalConfig, seeds: Sequence[int], size: str) -> list[Task]:
        pairs = [f"{kind}/{m}" for kind in config.modulations for m in config.segments]
        tasks = self.grid(size, seeds, METHODS, pairs)
        many = [f"d{d}/{config.multivariate_segments}" for d in config.multivariate]
        return tasks + self.grid(size, seeds[:config.multivariate_seeds], METHODS, many)

    def run(self, task: Task, config: CausalConfig) -> list[dict[str, Any]]:
        kind, d, segments = parse_value(task.value)
        modulation = "mean" if kind == "mean" else "variance"
        layers = config.layers[task.data_seed % len(config.layers)]
        data = make_causal(d, segments, config.n_per_segment, n_layers=layers, modulation=modulation,
                           random_state=task.data_seed)
        params = {} if config.steps is None else {"max_steps": config.steps}
        params.update({"iVAE": config.ivae, "TCL": config.tcl, "IFlow": config.flow}[task.method])
        if task.method == "iVAE" and modulation == "mean":
            params["prior_mean"] = True
        model = NonSENS(UNMIXING[task.method], unmixing_params=params, device="cpu",
                        random_state=task.model_seed, **config.nonsens).fit(data.x, data.u)
        z = model.transform(data.x, data.u)
        mcc = mean_corr_coef(np.abs(data.s) if task.method == "TCL" else data.s, z)
        correct = [int(i) for i in model.order_] == [int(i) for i in data.order]
        strict = model.direction_ == data.direction if d == 2 else bool(model.decided_) and correct
        return [task.row(mcc=mcc, score=float(correct),
                         score_name=f"correct; strict={int(strict)}; decided={int(model.decided_)}; layers={layers}",
                         seconds=model.unmixing_.fit_time_, step=model.unmixing_.n_steps_)]

    # ------------------------------------------------------------- summary and figure
    def table(self, rows: list[dict[str, Any]], config: CausalConfig) -> tuple[list[str], list[list[str]]]:
        """Per data and method: proportion of correct orders, of correct and supported ones
        (the strict rule), of supported ones, mean MCC of the unmixing; the paper's value."""
        body = []
        for value in ordered(r["value"] for r in rows):
            kind, d, segments = parse_value(value)
            for method in ordered(r["method"] for r in rows):
                mine = [r for r in rows if r["value"] == value and r["method"] == method]
                if not mine:
                    continue
                paper = self.paper_values.get((method, kind)) if d == 2 and segments == 48 else None
                body.append([f"{'pair' if d == 2 else f'd = {d}'}, {kind}, {segments} segments", method,
                             _proportion(mine, "correct"), _proportion(mine, "strict"),
                             _proportion(mine, "decided"), f"{np.mean([r['mcc'] for r in mine]):.2f}",
                             "–" if paper is None else f"{paper:.2f}"])
        return ["data", "method", "correct", "correct and decided (strict rule)", "decided", "MCC", "paper"], body

    def plot(self, rows: list[dict[str, Any]], config: CausalConfig, ax: Any) -> None:
        """Proportion of correct directions (pairs) against the number of segments: a line per
        method and data kind (normal solid, mean-modulated dashed); the paper's at 48 hollow."""
        styles = {"normal": "-", "mean": "--"}
        for i, method in enumerate(METHODS):
            for kind in ("normal", "mean"):
                mine = [r for r in rows if r["method"] == method and parse_value(r["value"])[:2] == (kind, 2)]
                if not mine:
                    continue
                xs = sorted({parse_value(r["value"])[2] for r in mine})
                ys = [np.mean([outcome(r, "correct") for r in mine if parse_value(r["value"])[2] == m]) for m in xs]
                label = f"{method}, {'normal' if kind == 'normal' else 'mean-modulated'}"
                marker, size = ("D", 6) if method == "IFlow" else ("o", 4)  # visible where it meets TCL's
                ax.plot(xs, ys, styles[kind], marker=marker, color=f"C{i}", markersize=size, label=label)
                paper = self.paper_values.get((method, kind))
                if paper is not None:
                    ax.plot([48], [paper], "o" if kind == "normal" else "s", markerfacecolor="none",
                            color=f"C{i}", markersize=8, label=f"{label} (paper)")
        ticks = sorted({parse_value(r["value"])[2] for r in rows if parse_value(r["value"])[1] == 2})
        if ticks:
            ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.set_xlabel(f"number of segments ({config.n_per_segment} points each), pairs")
        ax.set_ylabel("proportion of correct directions")
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, ncol=2, loc="best")


def _proportion(rows: list[dict[str, Any]], name: str) -> str:
    values = [outcome(r, name) for r in rows]
    return f"{np.mean(values):.2f} ({int(sum(values))}/{len(values)})"


EXPERIMENT = Causal()
