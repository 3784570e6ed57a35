"""What the real-data examples share: fitting each method on the training rows, consistency
between seeds, a downstream classifier on per-group summaries, the consistency check of
the default model, and writing the tables.

Methods: ``flow`` (what ``nica fit`` / ``nica.fit_model`` picks for real-valued data: the
identifiable flow), ``ivae`` (``nica.IVAE`` with its defaults), ``vae`` (``nica.VAE``, same
settings, prior independent of u: not identifiable) and ``cebra`` (CEBRA's offset1-model,
u as its discrete label; only when the optional package is installed).
"""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

import numpy as np

METHODS = ("flow", "ivae", "vae", "cebra")


def fit_latents(method: str, x_train: np.ndarray, u_train: np.ndarray, x_test: np.ndarray, n: int, seed: int,
                max_steps: int | None, cebra_iterations: int) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Fit ``method`` on the training rows; latents of train and test rows (the test rows
    without u: they may be new groups), wall and process CPU seconds of the fit."""
    start, start_cpu = time.perf_counter(), time.process_time()
    if method == "cebra":
        import cebra
        import torch

        torch.manual_seed(seed)  # CEBRA draws its initial weights and batches from torch's global RNG
        np.random.seed(seed)
        model = cebra.CEBRA(model_architecture="offset1-model", output_dimension=n, batch_size=512,
                            max_iterations=cebra_iterations, device="cpu", verbose=False)
        model.fit(x_train, u_train)
    else:
        import nica

        steps = {} if max_steps is None else {"max_steps": max_steps}
        if method == "flow":
            model = nica.fit_model(x_train, u_train, n, random_state=seed, **steps)
        else:
            cls = nica.IVAE if method == "ivae" else nica.VAE
            model = cls(n, random_state=seed, device="cpu", **steps).fit(x_train, u_train)
    seconds, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    return model.transform(x_train), model.transform(x_test), seconds, cpu


def available_methods(names: str) -> list[str]:
    """The comma-separated method names, less CEBRA when it is not installed (said so)."""
    methods = [m.strip() for m in names.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise SystemExit(f"unknown method(s) {unknown}; choose from {', '.join(METHODS)}")
    if "cebra" in methods:
        try:
            import cebra  # noqa: F401
        except ImportError:
            print("cebra is not installed (pip install 'nica[cebra]'): leaving it out")
            methods.remove("cebra")
    return methods


def seed_consistency(latents: list[np.ndarray]) -> dict[str, float]:
    """Mean and standard deviation over pairs of seeds of strong and weak MCC."""
    from nica.metrics import seed_agreement

    a = seed_agreement(latents)
    return {"mcc_mean": a.mcc, "mcc_std": a.mcc_std, "weak_mcc_mean": a.weak_mcc, "weak_mcc_std": a.weak_mcc_std}


def group_summaries(z: np.ndarray, groups: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per group (recording, utterance): the mean and standard deviation of each latent
    over its rows ``(n_groups, 2 n)``, and the group's label."""
    ids = np.unique(groups)
    features = np.array([np.r_[z[groups == g].mean(0), z[groups == g].std(0)] for g in ids])
    return features, np.array([labels[groups == g][0] for g in ids])


def downstream_accuracy(z_train, groups_train, labels_train, z_test, groups_test, labels_test) -> tuple[float, float]:
    """Held-out accuracy of a label from latents by logistic regression (standardised
    inputs): per row, and per group from :func:`group_summaries`."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def classifier():
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2_000))

    point = classifier().fit(z_train, labels_train).score(z_test, labels_test)
    f_train, y_train = group_summaries(z_train, groups_train, labels_train)
    f_test, y_test = group_summaries(z_test, groups_test, labels_test)
    return float(point), float(classifier().fit(f_train, y_train).score(f_test, y_test))


def check_consistency(x_train, u_train, x_test, n: int, seeds: int, max_steps: int | None, out: Path,
                      stem: str, jobs: int | None = None) -> dict[str, Any]:
    """``nica.consistency`` of the default model: fitted on the training rows, agreement on
    the test rows, beside the VAE and the same model with u shuffled (rotated inputs);
    writes ``{stem}-consistency.json`` and ``.png``. Returns its JSON."""
    import nica
    from nica.datasets.io import atomic_write

    steps = {} if max_steps is None else {"max_steps": max_steps}
    result = nica.consistency(x_train, u_train, n, seeds=seeds, X_eval=x_test, reference_params=steps, n_jobs=jobs,
                              echo=lambda line: print("  consistency " + line, flush=True), **steps)
    print(result.summary())
    d = result.to_dict()
    text = result.to_json().encode()
    atomic_write(out / f"{stem}-consistency.json", lambda fh: fh.write(text), overwrite=True)
    result.plot(out / f"{stem}-consistency.png", overwrite=True)
    return d


def write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def summarise(rows: list[dict], latents: dict[str, list[np.ndarray]], accuracy_keys: tuple[str, ...]) -> dict:
    """Per method: consistency between seeds (with 2 seeds or more), mean accuracies and seconds."""
    summary = {}
    for method, zs in latents.items():
        fits = [r for r in rows if r["method"] == method]
        summary[method] = {**(seed_consistency(zs) if len(zs) > 1 else {}),
                           **{k: float(np.mean([r[k] for r in fits])) for k in accuracy_keys},
                           "fit_seconds": float(np.mean([r["fit_seconds"] for r in fits])),
                           "fit_cpu_seconds": float(np.mean([r["fit_cpu_seconds"] for r in fits]))}
    return summary


def print_table(summary: dict, accuracy_keys: tuple[str, str], what: str) -> None:
    print(f"{'method':<8} {'MCC across seeds':>18} {'weak MCC':>16} {what + ' (point / group)':>30} {'s/fit':>7}")
    for method, s in summary.items():
        mcc = f"{s['mcc_mean']:.3f} ± {s['mcc_std']:.3f}" if "mcc_mean" in s else "-"
        weak = f"{s['weak_mcc_mean']:.3f} ± {s['weak_mcc_std']:.3f}" if "weak_mcc_mean" in s else "-"
        seconds = f"{s['fit_seconds']:.1f}" if "fit_seconds" in s else ""
        print(f"{method:<8} {mcc:>18} {weak:>16} {s[accuracy_keys[0]]:>21.3f} / {s[accuracy_keys[1]]:.3f} "
              f"{seconds:>7}")


def standard(z: np.ndarray) -> np.ndarray:
    return (z - z.mean()) / (z.std() or 1.0)


def example_parser(description: str, methods: str, name: str, n_components: int) -> "argparse.ArgumentParser":
    """The examples' shared command line: --quick, --seeds, --n-components, --methods, --out,
    --jobs, --name (``methods`` and ``name``: this example's defaults)."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="2 seeds, short fits (seconds)")
    parser.add_argument("--seeds", type=int, help="fits per method (default 5, quick 2)")
    parser.add_argument("--n-components", type=int, default=n_components)
    parser.add_argument("--methods", default=methods,
                        help="comma separated: flow (nica fit's default), ivae, vae, cebra (cebra only when installed)")
    parser.add_argument("--out", type=Path, default=Path("docs/figures"), help="folder of the CSVs and figure")
    parser.add_argument("--jobs", type=int, help="processes of the consistency check (default: the usable cores)")
    parser.add_argument("--name", default=name, help="file name stem of the outputs")
    return parser


def fit_methods(methods: list[str], seeds: range, x_train: np.ndarray, u_train: np.ndarray, x_test: np.ndarray,
                n: int, settings: dict, score: Any, keys: tuple[str, str],
                what: str) -> tuple[list[dict], dict[str, list[np.ndarray]]]:
    """Every method with every seed: one row each (times and ``score(z_train, z_test)``'s two
    accuracies under ``keys``), and the test rows' latents ``(N_test, n)`` by method.
    ``what``: how the progress line names the two accuracies, e.g. "speaker accuracy {:.3f}
    per frame, {:.3f} per utterance"."""
    rows: list[dict] = []
    latents: dict[str, list[np.ndarray]] = {}
    for method in methods:
        latents[method] = []
        for seed in seeds:
            z_train, z_test, seconds, cpu = fit_latents(method, x_train, u_train, x_test, n, seed,
                                                        settings["max_steps"], settings["cebra_iterations"])
            first, second = score(z_train, z_test)
            latents[method].append(z_test)
            rows.append({"method": method, "seed": seed, "fit_seconds": round(seconds, 2),
                         "fit_cpu_seconds": round(cpu, 2), keys[0]: round(first, 4), keys[1]: round(second, 4)})
            print(f"{method} seed {seed}: {seconds:.1f} s ({cpu:.1f} s CPU), held-out {what.format(first, second)}",
                  flush=True)
    return rows, latents


def add_baseline(name: str, accuracies: tuple[float, float], keys: tuple[str, str], summary: dict,
                 rows: list[dict]) -> None:
    """A representation without fitting (the raw x, its principal components) in the summary and the rows."""
    summary[name] = dict(zip(keys, accuracies))
    rows.append({"method": name, "seed": "", "fit_seconds": 0.0, "fit_cpu_seconds": 0.0,
                 **{k: round(v, 4) for k, v in zip(keys, accuracies)}})


def write_tables(out: Path, stem: str, rows: list[dict], summary: dict) -> None:
    """``stem``.csv (one row per fit) and ``stem``-summary.csv (one per method) in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / f"{stem}.csv", rows)
    write_csv(out / f"{stem}-summary.csv",
              [{"method": m, **{k: round(v, 4) for k, v in s.items()}} for m, s in summary.items()])
