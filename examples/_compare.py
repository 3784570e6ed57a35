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
