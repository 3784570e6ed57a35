"""Real data: are the latents nica gives identifiable in practice?

BasicMotions (smart-watch accelerometer + gyroscope, 10 Hz; 40 training and 40 held-out
recordings of standing, walking, running and badminton) ships inside sktime / aeon, so
nothing is downloaded. There are no true sources, so identifiability is measured the way
the field does without them:

* consistency: fits with different seeds should give the same latents up to permutation
  and element-wise transforms. Strong MCC between the latents of every pair of seeds (and
  weak, CCA-aligned MCC: the same up to a linear map), on the held-out recordings;
* a downstream task: the activity of held-out recordings, classified from the latents
  by logistic regression trained on the training recordings' latents.

u is the recording (40 labels: the data are nonstationary across recordings, as the
paper's segments). The held-out recordings are new, so their u is unknown: their latents
come from ``transform(X)`` without u. The model ``nica fit`` picks (``flow``: the
identifiable flow) is compared with the iVAE, the plain VAE (same settings as the iVAE,
prior independent of u: not identifiable) and, when the optional package ``cebra`` is
installed, with CEBRA (offset1-model: one time point in; the recording as its discrete
label). With the flow among the methods, ``nica.consistency`` then checks the default
model the honest way (each seed on its own rotation of the whitened data, beside the
VAE, the flow with u shuffled, and chance; agreement on the held-out recordings).

Run:  python examples/basic_motions.py            (5 seeds; tens of minutes on one core)
      python examples/basic_motions.py --quick    (2 seeds, short fits: the test suite's run)
Writes ``basic-motions.csv`` (one row per fit), ``basic-motions-summary.csv``,
``basic-motions.png`` (latents over time coloured by activity) and, with the flow,
``basic-motions-consistency.json`` / ``.png`` to --out (``--name`` changes the stem; the
docs' rows: ``--methods flow,ivae,vae`` and ``--methods cebra --name basic-motions-cebra``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _compare import add_baseline, available_methods, check_consistency, downstream_accuracy  # noqa: E402
from _compare import example_parser, fit_methods, standard, print_table, summarise, write_tables  # noqa: E402

N_COMPONENTS = 6  # the knee of `nica select-n --candidates 2-6` on the training recordings (README)
FULL = dict(seeds=5, max_steps=None, cebra_iterations=5_000)
QUICK = dict(seeds=2, max_steps=150, cebra_iterations=50)
ACCURACY = ("activity_accuracy_point", "activity_accuracy_recording")


def activity_accuracy(z_train, train, z_test, test) -> tuple[float, float]:
    """Held-out activity accuracy from latents: per time point, and per recording (mean and
    standard deviation of each latent over the recording)."""
    return downstream_accuracy(z_train, train.recording, train.activity, z_test, test.recording, test.activity)


def plot(latents: dict[str, list[np.ndarray]], test, path: Path) -> None:
    """Each method's latents of the held-out recordings over time (recordings one after the
    other, grouped by activity), seed 0 and seed 1 matched to it, coloured by activity."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nica.metrics import mean_corr_coef

    order = np.argsort(test.activity, kind="stable")
    activities = sorted(set(test.activity))
    colours = dict(zip(activities, plt.get_cmap("tab10").colors))
    methods = list(latents)
    n = latents[methods[0]][0].shape[1]
    fig, axes = plt.subplots(n, len(methods), figsize=(5 * len(methods), 1.6 * n + 0.8), squeeze=False,
                             sharex=True)
    t = np.arange(len(order))
    for col, method in enumerate(methods):
        z0 = latents[method][0]
        z1 = latents[method][1] if len(latents[method]) > 1 else None
        if z1 is not None:  # seed 1 matched to seed 0: permutation and sign
            match = mean_corr_coef(z0, z1, return_details=True)
            z1 = z1[:, match.permutation] * np.sign(match.correlations)
        for i in range(n):
            ax = axes[i, col]
            for activity in activities:
                rows = np.where(test.activity[order] == activity, 1.0, np.nan)
                ax.plot(t, rows * standard(z0[order, i]), lw=0.6, color=colours[activity],
                        label=activity if i == 0 and col == 0 else None)
            if z1 is not None:
                ax.plot(t, standard(z1[order, i]), lw=0.4, color="black", alpha=0.35,
                        label="seed 1 (matched)" if i == 0 and col == 0 else None)
            ax.set_ylabel(f"z{i + 1}")
        axes[0, col].set_title(method)
        axes[-1, col].set_xlabel("held-out recordings, one after the other (10 Hz)")
    fig.legend(loc="lower center", ncol=len(activities) + 1, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = example_parser(__doc__.split("\n\n")[0], "flow,ivae,vae,cebra", "basic-motions", N_COMPONENTS)
    args = parser.parse_args(argv)
    settings = dict(QUICK if args.quick else FULL)
    seeds = range(args.seeds or settings["seeds"])

    import torch

    from nica.datasets.motions import load_basic_motions
    from nica.datasets.tabular import MissingDependencyError

    torch.set_num_threads(1)
    try:
        train, test = load_basic_motions("train"), load_basic_motions("test")
    except MissingDependencyError as exc:  # the optional extra is missing: nothing to show
        print(f"skipped: {exc}")
        return {}
    methods = available_methods(args.methods)

    rows, latents = fit_methods(methods, seeds, train.x, train.recording, test.x, args.n_components, settings,
                                lambda z_train, z_test: activity_accuracy(z_train, train, z_test, test), ACCURACY,
                                "activity accuracy {:.3f} per time point, {:.3f} per recording")
    summary = summarise(rows, latents, ACCURACY)
    add_baseline("raw x", activity_accuracy(train.x, train, test.x, test), ACCURACY, summary, rows)

    stem = args.name + ("-quick" if args.quick else "")
    write_tables(args.out, stem, rows, summary)
    if len(seeds) > 0 and methods:
        plot(latents, test, args.out / f"{stem}.png")
    print(f"\nBasicMotions, n = {args.n_components}, {len(seeds)} seeds; held-out recordings "
          "(u unknown at transform time)")
    print_table(summary, ACCURACY, "activity acc.")
    if "flow" in methods and len(seeds) > 1:
        print("\nnica.consistency of the default model (fitted on the training recordings, agreement on the "
              "held-out ones):")
        summary["consistency check"] = check_consistency(train.x, train.recording, test.x, args.n_components,
                                                         len(seeds), settings["max_steps"], args.out, stem, args.jobs)
    print(f"wrote {args.out}/{stem}.csv, {stem}-summary.csv and {stem}.png")
    return summary


if __name__ == "__main__":
    sys.exit(0 if main() is not None else 1)
