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
come from ``transform(X)`` without u. The iVAE is compared with the plain VAE (same
settings, prior independent of u: not identifiable) and, when the optional package
``cebra`` is installed, with CEBRA (offset1-model: one time point in, as the iVAE; the
recording as its discrete label).

Run:  python examples/basic_motions.py            (5 seeds; minutes on one core)
      python examples/basic_motions.py --quick    (2 seeds, short fits: the test suite's run)
Writes ``basic-motions.csv`` (one row per fit), ``basic-motions-summary.csv`` and
``basic-motions.png`` (latents over time coloured by activity) to --out (``--name`` changes
the stem; the README's rows: ``--methods ivae,vae`` and ``--methods cebra --name
basic-motions-cebra``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

N_COMPONENTS = 6  # the knee of `nica select-n --candidates 2-6` on the training recordings (README)
FULL = dict(seeds=5, max_steps=None, cebra_iterations=5_000)
QUICK = dict(seeds=2, max_steps=150, cebra_iterations=50)


def fit_latents(method: str, train, test, n: int, seed: int, max_steps: int | None, cebra_iterations: int):
    """Fit ``method`` on the training recordings; latents of train and test rows, seconds."""
    start = time.perf_counter()
    if method == "cebra":
        import cebra
        import torch

        torch.manual_seed(seed)  # CEBRA draws its initial weights and batches from torch's global RNG
        np.random.seed(seed)
        model = cebra.CEBRA(model_architecture="offset1-model", output_dimension=n, batch_size=512,
                            max_iterations=cebra_iterations, device="cpu", verbose=False)
        model.fit(train.x, train.recording)
        return model.transform(train.x), model.transform(test.x), time.perf_counter() - start
    from nica import IVAE, VAE

    steps = {} if max_steps is None else {"max_steps": max_steps}
    cls = IVAE if method == "ivae" else VAE
    model = cls(n, random_state=seed, device="cpu", **steps).fit(train.x, train.recording)
    # the held-out recordings are new: their u is unknown, and not needed
    return model.transform(train.x), model.transform(test.x), time.perf_counter() - start


def activity_accuracy(z_train, train, z_test, test) -> tuple[float, float]:
    """Held-out activity accuracy from latents: per time point, and per recording (mean and
    standard deviation of each latent over the recording)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def classifier():
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2_000))

    point = classifier().fit(z_train, train.activity).score(z_test, test.activity)

    def summary(z, data):
        groups = [z[data.recording == r] for r in range(data.n_recordings)]
        labels = [data.activity[data.recording == r][0] for r in range(data.n_recordings)]
        return np.array([np.r_[g.mean(0), g.std(0)] for g in groups]), np.array(labels)

    (f_train, y_train), (f_test, y_test) = summary(z_train, train), summary(z_test, test)
    return float(point), float(classifier().fit(f_train, y_train).score(f_test, y_test))


def consistency(latents: list[np.ndarray]) -> dict[str, float]:
    """Mean and standard deviation over seed pairs of strong and weak MCC."""
    from nica.metrics import pairwise_mcc

    out = {}
    for name, weak in (("mcc", False), ("weak_mcc", True)):
        matrix = pairwise_mcc(latents, weak=weak)
        pairs = matrix[np.triu_indices(len(latents), 1)]
        out[f"{name}_mean"], out[f"{name}_std"] = float(pairs.mean()), float(pairs.std())
    return out


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
                ax.plot(t, rows * _standard(z0[order, i]), lw=0.6, color=colours[activity],
                        label=activity if i == 0 and col == 0 else None)
            if z1 is not None:
                ax.plot(t, _standard(z1[order, i]), lw=0.4, color="black", alpha=0.35,
                        label="seed 1 (matched)" if i == 0 and col == 0 else None)
            ax.set_ylabel(f"z{i + 1}")
        axes[0, col].set_title(method)
        axes[-1, col].set_xlabel("held-out recordings, one after the other (10 Hz)")
    fig.legend(loc="lower center", ncol=len(activities) + 1, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _standard(z: np.ndarray) -> np.ndarray:
    return (z - z.mean()) / (z.std() or 1.0)


def write_csv(path: Path, rows: list[dict]) -> None:
    import csv

    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds, short fits (seconds)")
    parser.add_argument("--seeds", type=int, help="fits per method (default 5, quick 2)")
    parser.add_argument("--n-components", type=int, default=N_COMPONENTS)
    parser.add_argument("--methods", default="ivae,vae,cebra",
                        help="comma separated: ivae, vae, cebra (cebra only when installed)")
    parser.add_argument("--out", type=Path, default=Path("docs/figures"), help="folder of the CSVs and figure")
    parser.add_argument("--name", default="basic-motions", help="file name stem of the outputs")
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
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if "cebra" in methods:
        try:
            import cebra  # noqa: F401
        except ImportError:
            print("cebra is not installed (pip install 'nica[cebra]'): leaving it out")
            methods.remove("cebra")

    rows, latents = [], {}
    for method in methods:
        latents[method] = []
        for seed in seeds:
            z_train, z_test, seconds = fit_latents(method, train, test, args.n_components, seed,
                                                   settings["max_steps"], settings["cebra_iterations"])
            point, recording = activity_accuracy(z_train, train, z_test, test)
            latents[method].append(z_test)
            rows.append({"method": method, "seed": seed, "fit_seconds": round(seconds, 2),
                         "activity_accuracy_point": round(point, 4),
                         "activity_accuracy_recording": round(recording, 4)})
            print(f"{method} seed {seed}: {seconds:.1f} s, held-out activity accuracy "
                  f"{point:.3f} per time point, {recording:.3f} per recording", flush=True)
    for name, (z_train, z_test) in {"raw x": (train.x, test.x)}.items():
        point, recording = activity_accuracy(z_train, train, z_test, test)
        rows.append({"method": name, "seed": "", "fit_seconds": 0.0, "activity_accuracy_point": round(point, 4),
                     "activity_accuracy_recording": round(recording, 4)})

    summary = {}
    for method in methods:
        fits = [r for r in rows if r["method"] == method]
        summary[method] = {**(consistency(latents[method]) if len(latents[method]) > 1 else {}),
                           "activity_accuracy_point": float(np.mean([r["activity_accuracy_point"] for r in fits])),
                           "activity_accuracy_recording": float(np.mean([r["activity_accuracy_recording"] for r in fits])),
                           "fit_seconds": float(np.mean([r["fit_seconds"] for r in fits]))}
    raw = rows[-1]
    summary["raw x"] = {"activity_accuracy_point": raw["activity_accuracy_point"],
                        "activity_accuracy_recording": raw["activity_accuracy_recording"]}

    stem = args.name + ("-quick" if args.quick else "")
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(args.out / f"{stem}.csv", rows)
    write_csv(args.out / f"{stem}-summary.csv",
              [{"method": m, **{k: round(v, 4) for k, v in s.items()}} for m, s in summary.items()])
    if len(seeds) > 0:
        plot(latents, test, args.out / f"{stem}.png")
    print(f"\nBasicMotions, n = {args.n_components}, {len(seeds)} seeds; held-out recordings "
          "(u unknown at transform time)")
    print(f"{'method':<8} {'MCC across seeds':>18} {'weak MCC':>16} {'activity acc. (point / rec.)':>30}")
    for method, s in summary.items():
        mcc = f"{s['mcc_mean']:.3f} ± {s['mcc_std']:.3f}" if "mcc_mean" in s else "-"
        weak = f"{s['weak_mcc_mean']:.3f} ± {s['weak_mcc_std']:.3f}" if "weak_mcc_mean" in s else "-"
        print(f"{method:<8} {mcc:>18} {weak:>16} {s['activity_accuracy_point']:>21.3f} / "
              f"{s['activity_accuracy_recording']:.3f}")
    print(f"wrote {args.out}/{stem}.csv, {stem}-summary.csv and {stem}.png")
    return summary


if __name__ == "__main__":
    sys.exit(0 if main() is not None else 1)
