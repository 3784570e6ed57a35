"""Before/after check of a refactor: the public paths give bitwise the same outputs.

    python benchmarks/refactor_check.py record DIR            # outputs of the code on sys.path
    python benchmarks/refactor_check.py compare BEFORE AFTER   # key by key, bitwise

To record the code of another commit with this checkout's environment::

    mkdir /tmp/old && git archive COMMIT src | tar -x -C /tmp/old
    PYTHONPATH=/tmp/old/src python benchmarks/refactor_check.py record /tmp/before

``record`` runs, on small seeded data and one torch thread, each estimator's public path
(fit, transform, score, their histories and fitted attributes, save then load), the
README's commands through the command line (simulate, fit with every ``--model``,
transform, info, predict-u, evaluate, causal, select-n) and a sweep on an in-process Dask
cluster, and writes every output to ``DIR/arrays.npz`` (numbers) and ``DIR/values.json``
(text and settings; times left out). ``compare`` lists the keys whose values differ (a
float array is equal only bit for bit, NaN included) and the keys only one side has;
it exits 1 if any shared key differs. Bitwise equality holds on one machine with the same
thread count, not across CPUs (docs/performance.md).
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

#: fitted attributes recorded when an estimator has them (old and new names alike)
ATTRIBUTES = ("elbo_", "log_likelihood_", "score_", "selected_restart_", "restart_scores_", "restart_elbo_",
              "restart_log_likelihood_", "restart_agreement_", "restart_priors_", "x_mean_", "x_scale_",
              "components_", "noise_variance_", "seed_", "n_features_in_", "n_steps_", "classes_",
              "classification_accuracy_", "feature_names_in_")
#: settings that are times: never the same twice
TIMES = re.compile(r"(\d+(\.\d+)?) s\b")


class Recorder:
    """Outputs by name: arrays to ``arrays.npz``, everything else to ``values.json``."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self.values: dict[str, Any] = {}

    def add(self, key: str, value: Any) -> None:
        if isinstance(value, (list, tuple)) and value and all(isinstance(v, np.ndarray) for v in value):
            for i, v in enumerate(value):
                self.add(f"{key}[{i}]", v)
            return
        if isinstance(value, np.ndarray) and value.dtype != object:
            self.arrays[key] = value
        elif isinstance(value, (np.floating, float)) and not isinstance(value, bool):
            self.arrays[key] = np.asarray(value, dtype=np.float64)
        elif isinstance(value, np.ndarray):
            self.values[key] = [str(v) for v in value.tolist()]
        elif isinstance(value, np.integer):
            self.values[key] = int(value)
        else:
            self.values[key] = value

    def history(self, key: str, history: Any) -> None:
        for field in ("elbo", "model_elbo", "loss", "learning_rate"):
            self.add(f"{key}.{field}", np.asarray(getattr(history, field), dtype=np.float64))
        self.add(f"{key}.n_steps", int(history.n_steps))
        self.add(f"{key}.stopped_early", bool(history.stopped_early))
        self.add(f"{key}.events", [{k: v for k, v in e.items()} for e in history.events])

    def attributes(self, key: str, model: Any) -> None:
        for name in ATTRIBUTES:
            try:
                value = getattr(model, name)
            except Exception:  # noqa: BLE001 - absent for this estimator
                continue
            if value is None:
                self.add(f"{key}.{name}", None)
            elif isinstance(value, (list, np.ndarray)) or np.isscalar(value):
                self.add(f"{key}.{name}", np.asarray(value) if isinstance(value, list) and value
                         and not isinstance(value[0], str) else value)
        if hasattr(model, "history_"):
            self.history(f"{key}.history", model.history_)

    def save(self, out: Path, tmp: str) -> None:
        """Write both files; the run's temporary folder is named ``<tmp>`` in the text."""
        out.mkdir(parents=True, exist_ok=True)
        np.savez(out / "arrays.npz", **self.arrays)
        text = json.dumps(self.values, indent=1, sort_keys=True, default=str)
        (out / "values.json").write_text(text.replace(tmp, "<tmp>"))


def without_times(value: Any) -> Any:
    """A JSON-ready record with its times left out (``fit_time`` and ``... s`` in text)."""
    if isinstance(value, dict):
        return {k: without_times(v) for k, v in value.items() if k not in ("fit_time", "finished_at", "worker")}
    if isinstance(value, list):
        return [without_times(v) for v in value]
    if isinstance(value, str):
        return TIMES.sub("<time> s", value)
    return value


def saved_config(path: Path) -> dict[str, Any]:
    """config.json of a saved model less its versions and times."""
    config = json.loads((path / "config.json").read_text())
    for name in ("nica_version", "torch_version"):
        config.pop(name, None)
    return without_times(config)


# ---------------------------------------------------------------- the estimators
def record_estimator(rec: Recorder, key: str, model: Any, x: Any, u: Any, tmp: Path, *,
                     transform_u: bool = True) -> Any:
    """Outputs of a fitted estimator, then of the same model saved and loaded."""
    import nica

    u_arg = u if transform_u else None
    rec.add(f"{key}.transform", model.transform(x, u_arg))
    rec.add(f"{key}.score", float(model.score(x, u)))
    if hasattr(model, "score_samples"):
        rec.add(f"{key}.score_samples", model.score_samples(x, u))
    rec.attributes(key, model)
    rec.add(f"{key}.params", {k: repr(v) for k, v in model.get_params().items()})
    rec.add(f"{key}.repr", repr(model))
    if not hasattr(model, "save"):
        return None
    path = tmp / key
    model.save(path)
    rec.add(f"{key}.config_json", saved_config(path))
    loaded = nica.load(path)
    rec.add(f"{key}.loaded.transform", loaded.transform(x, u_arg))
    rec.add(f"{key}.loaded.score", float(loaded.score(x, u)))
    rec.attributes(f"{key}.loaded", loaded)
    info = nica.persistence.model_info(path)
    rec.add(f"{key}.info", without_times(info))
    return loaded


def record_ivae_family(rec: Recorder, tmp: Path) -> None:
    import nica
    from nica.baselines import BetaTCVAE, BetaVAE

    fast = dict(hidden_dim=16, n_layers=2, batch_size=100, max_steps=60, device="cpu")
    data = nica.make_nonstationary(3, n_segments=10, n_per_segment=60, random_state=0)
    tall = nica.make_nonstationary(2, n_obs=4, n_segments=10, n_per_segment=60, random_state=1)
    x_new = nica.make_nonstationary(3, n_segments=10, n_per_segment=20, random_state=5).x

    model = nica.IVAE(3, n_restarts=3, random_state=0, **fast).fit(data.x, data.u)
    record_estimator(rec, "ivae", model, data.x, data.u, tmp)
    rec.add("ivae.transform_restarts", model.transform_restarts(data.x, data.u))
    rec.add("ivae.sample_posterior", model.sample_posterior(data.x, data.u, n_samples=2, random_state=3))
    rec.add("ivae.inverse_transform", model.inverse_transform(model.transform(data.x)))
    rec.add("ivae.predict_proba_u", model.predict_proba_u(x_new))
    rec.add("ivae.predict_u", model.predict_u(x_new))
    rec.add("ivae.transform_new", model.transform(x_new))

    for name, kwargs in [("ivae_elbo", dict(objective="elbo", selection="elbo", n_restarts=2)),
                         ("ivae_annealed", dict(objective="annealed", prior="laplace", prior_mean=True)),
                         ("ivae_autograd", dict(analytic_gradients=False, decoder_var="learned")),
                         ("ivae_continuous", dict(u_type="continuous"))]:
        u = data.u if name != "ivae_continuous" else np.eye(10)[data.u] @ np.random.default_rng(0).normal(size=(10, 2))
        model = nica.IVAE(3, random_state=1, **{**fast, **kwargs}).fit(data.x, u)
        record_estimator(rec, name, model, data.x, u, tmp)

    authors = nica.IVAE.from_preset("authors", 2, random_state=0, **fast).fit(tall.x, tall.u)
    record_estimator(rec, "ivae_authors", authors, tall.x, tall.u, tmp)
    shape = nica.IVAE(2, random_state=0, **fast).fit(tall.x, tall.u)  # "auto": the tall-shape settings
    record_estimator(rec, "ivae_tall", shape, tall.x, tall.u, tmp)
    binary = (data.x > 0).astype(np.float32)
    bern = nica.IVAE(3, decoder="bernoulli", random_state=0, **fast).fit(binary, data.u)
    record_estimator(rec, "ivae_bernoulli", bern, binary, data.u, tmp)

    vae = nica.VAE(3, random_state=0, **fast).fit(data.x)
    record_estimator(rec, "vae", vae, data.x, None, tmp)
    beta = BetaVAE(3, beta=2.0, random_state=0, **fast).fit(data.x)
    record_estimator(rec, "betavae", beta, data.x, None, tmp)
    tc = BetaTCVAE(3, random_state=0, **fast).fit(data.x)
    record_estimator(rec, "betatcvae", tc, data.x, None, tmp)

    scm = nica.make_latent_scm(3, n_segments=8, n_per_segment=60, graph="dense", random_state=0)
    causal = nica.LatentCausalVAE(3, random_state=0, weight_penalty=0.5, **fast).fit(scm.x, scm.u)
    record_estimator(rec, "latent_causal", causal, scm.x, scm.u, tmp)
    rec.add("latent_causal.causal_weights", causal.causal_weights(scm.u[:50]))
    rec.add("latent_causal.transform_noise", causal.transform_noise(scm.x, scm.u))

    # a fit to data on which the loss is non-finite from the first step
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        huge = (data.x * 1e19).astype(np.float32)
        for name, make in [("ivae", lambda: nica.IVAE(3, standardize=False, random_state=0, **fast)),
                           ("flow", lambda: nica.IFlow(3, standardize=False, random_state=0, max_steps=30,
                                                       device="cpu"))]:
            model = make()
            try:
                model.fit(huge, data.u)
                rec.add(f"diverged.{name}", "no error")
            except Exception as exc:  # noqa: BLE001
                rec.add(f"diverged.{name}", f"{type(exc).__name__}: {exc}")
            rec.add(f"diverged.{name}.fitted", hasattr(model, "module_"))


def record_resume(rec: Recorder, tmp: Path) -> None:
    """A fit killed after its first checkpoint, then resumed; beside the uninterrupted fit."""
    import nica
    from nica.training import checkpoint as checkpoint_module

    fast = dict(hidden_dim=16, n_layers=2, batch_size=100, max_steps=60, device="cpu")
    data = nica.make_nonstationary(3, n_segments=10, n_per_segment=60, random_state=0)

    class Killed(Exception):
        pass

    real_save = checkpoint_module.Checkpointing.save
    for name, make in [("ivae", lambda d: nica.IVAE(3, n_restarts=2, checkpoint_dir=d, checkpoint_every=20,
                                                     random_state=0, **fast)),
                       ("flow", lambda d: nica.IFlow(3, max_steps=40, checkpoint_dir=d, checkpoint_every=20,
                                                     device="cpu", random_state=0))]:
        uninterrupted = make(tmp / f"resume-{name}-a").fit(data.x, data.u)
        calls = []

        def killing_save(self, state, _calls=calls):
            real_save(self, state)
            _calls.append(1)
            if len(_calls) == 1:
                raise Killed

        checkpoint_module.Checkpointing.save = killing_save
        model = make(tmp / f"resume-{name}-b")
        try:
            model.fit(data.x, data.u)
        except Killed:
            pass
        finally:
            checkpoint_module.Checkpointing.save = real_save
        model.fit(data.x, data.u, resume=True)
        rec.add(f"resume.{name}.uninterrupted", uninterrupted.transform(data.x, data.u))
        rec.add(f"resume.{name}.resumed", model.transform(data.x, data.u))
        rec.history(f"resume.{name}.history", model.history_)


def record_flows(rec: Recorder, tmp: Path) -> None:
    import nica

    data = nica.make_nonstationary(3, n_segments=10, n_per_segment=60, random_state=0)
    tall = nica.make_nonstationary(2, n_obs=4, n_segments=10, n_per_segment=60, random_state=1)
    x_new = nica.make_nonstationary(3, n_segments=10, n_per_segment=20, random_state=5).x
    flow = nica.IFlow(3, max_steps=60, random_state=0, device="cpu").fit(data.x, data.u)
    record_estimator(rec, "iflow", flow, data.x, data.u, tmp)
    rec.add("iflow.inverse_transform", flow.inverse_transform(flow.transform(data.x)))
    rec.add("iflow.predict_proba_u", flow.predict_proba_u(x_new))
    rec.add("iflow.transform_new", flow.transform(x_new))
    pca = nica.IFlow(2, max_steps=60, n_restarts=2, selection="agreement", random_state=0,
                     device="cpu").fit(tall.x, tall.u)
    record_estimator(rec, "iflow_pca", pca, tall.x, tall.u, tmp)
    rec.add("iflow_pca.inverse_transform", pca.inverse_transform(pca.transform(tall.x)))
    spline = nica.IFlow(3, flow="spline-autoregressive", n_restarts=1, n_flows=1, max_steps=20, batch_size=64,
                        random_state=0, device="cpu").fit(data.x, data.u)
    record_estimator(rec, "iflow_spline", spline, data.x, data.u, tmp)
    auto = nica.fit_model(data.x, data.u, 3, max_steps=40, random_state=0, device="cpu")
    rec.add("fit_model.type", type(auto).__name__)
    rec.add("fit_model.transform", auto.transform(data.x))
    rec.add("choose_model", repr(nica.choose_model(data.x, 3)))


def record_temporal(rec: Recorder, tmp: Path) -> None:
    import nica

    data = nica.make_temporal(2, lags=1, n_domains=3, n_per_domain=100, random_state=0)
    flow = nica.TemporalIVAE(2, lags=1, n_flows=1, max_steps=30, random_state=0, device="cpu").fit(data.x, data.u)
    record_estimator(rec, "temporal_flow", flow, data.x, data.u, tmp)
    rec.add("temporal_flow.inverse_transform", flow.inverse_transform(flow.transform(data.x)))
    wide = np.concatenate([data.x, data.x[:, :1] ** 2], axis=1)
    vae = nica.TemporalIVAE(2, lags=2, inference="vae", hidden_dim=16, n_layers=2, max_steps=30,
                            random_state=0, device="cpu").fit(wide, data.u)
    record_estimator(rec, "temporal_vae", vae, wide, data.u, tmp)
    stacked = data.x[:300].reshape(3, 100, 2)
    several = nica.TemporalIVAE(2, lags=1, n_flows=1, max_steps=20, random_state=0,
                                device="cpu").fit(stacked, None)
    record_estimator(rec, "temporal_stacked", several, stacked, None, tmp)


def record_switching(rec: Recorder, tmp: Path) -> None:
    """The regime-switching temporal flow (where the code has it): one K, K by held-out
    likelihood, fewer latents than features; regimes of new series; the command line."""
    import nica

    if not hasattr(nica, "SwitchingTemporalFlow"):
        return
    from nica.datasets.switching import make_switching

    data = make_switching(3, 2, n_paths=12, sequences_per_path=2, n_test_paths=4, random_state=0)
    fast = dict(n_flows=1, transition_hidden=16, flow_hidden=16, max_steps=8, device="cpu", random_state=0)
    one = nica.SwitchingTemporalFlow(3, n_regimes=2, **fast).fit(data.x)
    record_estimator(rec, "switching", one, data.x, None, tmp)
    rec.add("switching.predict_regime", one.predict_regime(data.x_test))
    rec.add("switching.viterbi", one.predict_regime(data.x_test, method="viterbi"))
    rec.add("switching.predict_proba_regime", one.predict_proba_regime(data.x_test))
    rec.add("switching.transition_matrix", one.transition_matrix_)
    rec.add("switching.inverse_transform", one.inverse_transform(one.transform(data.x_test).reshape(-1, 3)))
    auto = nica.SwitchingTemporalFlow(3, n_regimes="auto", regime_candidates=(1, 2), **fast).fit(data.x)
    record_estimator(rec, "switching_auto", auto, data.x, None, tmp)
    rec.add("switching_auto.regime_scores", {str(k): v for k, v in auto.regime_scores_.items()})
    wide = np.concatenate([data.x, data.x[..., :1] ** 2], axis=-1)
    pca = nica.SwitchingTemporalFlow(3, n_regimes=1, rotation="loadings", **fast).fit(wide)
    record_estimator(rec, "switching_pca", pca, wide, None, tmp)

    from click.testing import CliRunner

    from nica.cli import main

    np.savez(tmp / "switching.npz", x=data.x)
    runner = CliRunner()
    fit = runner.invoke(main, ["--threads", "1", "fit", str(tmp / "switching.npz"), "--model", "temporal",
                               "--regimes", "2", "--n-components", "3", "--max-steps", "6", "--out",
                               str(tmp / "switching-cli"), "--quiet"], catch_exceptions=False)
    rec.add("cli.fit_switching.exit_code", fit.exit_code)
    regimes = runner.invoke(main, ["predict-regime", str(tmp / "switching-cli"), str(tmp / "switching.npz"),
                                   "--out", str(tmp / "regimes.npy")], catch_exceptions=False)
    rec.add("cli.predict_regime.output", without_times(regimes.output))
    rec.add("cli.predict_regime.file", np.load(tmp / "regimes.npy"))


def record_tcl_nonsens(rec: Recorder, tmp: Path) -> None:
    import nica
    from nica.causal import NonSENS, make_causal

    data = nica.make_nonstationary(3, n_segments=10, n_per_segment=60, random_state=0)
    tcl = nica.TCL(3, max_steps=60, random_state=0, device="cpu").fit(data.x, data.u)
    record_estimator(rec, "tcl", tcl, data.x, data.u, tmp)
    rec.add("tcl.features", tcl.features(data.x))
    rec.add("tcl.predict", tcl.predict(data.x))
    pairs = make_causal(2, n_segments=10, n_per_segment=100, n_layers=1, random_state=0)
    for method in ("flow", "ivae", "tcl"):
        model = NonSENS(method, unmixing_params={"max_steps": 60, "device": "cpu"}, random_state=0)
        model.fit(pairs.x, pairs.u)
        for name in ("order_", "decided_", "direction_", "disturbance_", "pvalues_", "statistics_"):
            value = getattr(model, name)
            rec.add(f"nonsens_{method}.{name}", np.asarray(value) if isinstance(value, np.ndarray)
                    else (list(value) if isinstance(value, tuple) else value))
        rec.add(f"nonsens_{method}.latents", model.unmixing_.transform(pairs.x, pairs.u))


def record_select_n(rec: Recorder) -> None:
    import nica

    data = nica.make_nonstationary(2, n_obs=4, n_segments=8, n_per_segment=50, random_state=2)
    result = nica.select_n_components(data.x, data.u, [1, 2, 3], random_state=0, progress=False,
                                      max_steps=40, hidden_dim=16, n_layers=2, batch_size=100, device="cpu")
    rec.add("select_n.n_components", int(result.n_components))
    rec.add("select_n.elbo", np.asarray(result.elbo))
    rec.add("select_n.transform", result.model.transform(data.x, data.u))
    rec.add("select_n.table", result.table())


# ---------------------------------------------------------------- the command line
def record_cli(rec: Recorder, tmp: Path) -> None:
    from click.testing import CliRunner

    from nica.cli import main

    runner = CliRunner()

    def run(key: str, *args: str) -> None:
        result = runner.invoke(main, ["--threads", "1", *args], catch_exceptions=False)
        rec.add(f"cli.{key}.exit_code", result.exit_code)
        output = result.output
        if "--json" in args and result.exit_code == 0:  # fit_time is a number there
            output = json.loads(output)
        rec.add(f"cli.{key}.output", without_times(output))

    d = tmp / "cli"
    d.mkdir()
    run("simulate", "simulate", "--out", str(d / "data.npz"), "--n-sources", "3", "--n-segments", "10",
        "--per-segment", "60", "--seed", "1")
    run("simulate_tall", "simulate", "--out", str(d / "tall.npz"), "--n-sources", "2", "--n-obs", "4",
        "--n-segments", "10", "--per-segment", "60", "--seed", "1")
    fits = {
        "fit_auto": ["--max-steps", "60"],
        "fit_auto_tall": ["--max-steps", "60"],
        "fit_ivae": ["--model", "ivae", "--max-steps", "60", "--hidden-dim", "16", "--restarts", "2"],
        "fit_authors": ["--model", "ivae", "--preset", "authors", "--max-steps", "60"],
        "fit_flow": ["--model", "flow", "--epochs", "2", "--restarts", "2"],
    }
    for key, extra in fits.items():
        source = d / ("tall.npz" if "tall" in key or "authors" in key else "data.npz")
        n = "2" if source.name == "tall.npz" else "3"
        run(key, "fit", str(source), "--n-components", n, "--out", str(d / key), "--quiet", *extra)
        run(f"{key}.transform", "transform", str(d / key), str(source), "--out", str(d / f"{key}.npy"))
        rec.add(f"cli.{key}.z", np.load(d / f"{key}.npy"))
        run(f"{key}.info", "info", str(d / key))
        run(f"{key}.info_json", "info", str(d / key), "--json")
        run(f"{key}.evaluate", "evaluate", str(d / f"{key}.npy"), str(source))
        rec.add(f"cli.{key}.config_json", saved_config(d / key))
    run("predict_u", "predict-u", str(d / "fit_auto"), str(d / "data.npz"), "--out", str(d / "u.csv"))
    rec.add("cli.predict_u.file", (d / "u.csv").read_text())
    run("predict_u_ivae", "predict-u", str(d / "fit_ivae"), str(d / "data.npz"), "--proba",
        "--out", str(d / "pu.npy"))
    rec.add("cli.predict_u_ivae.file", np.load(d / "pu.npy"))
    run("transform_sample", "transform", str(d / "fit_ivae"), str(d / "data.npz"), "--sample", "--seed", "2",
        "--out", str(d / "sample.npy"))
    rec.add("cli.transform_sample.z", np.load(d / "sample.npy"))

    import nica

    series = nica.make_temporal(2, lags=1, n_domains=3, n_per_domain=100, random_state=0)
    np.savez(d / "series.npz", x=series.x, u=series.u)
    run("fit_temporal", "fit", str(d / "series.npz"), "--model", "temporal", "--lags", "1", "--n-components",
        "2", "--max-steps", "30", "--out", str(d / "temporal"), "--quiet")
    run("fit_temporal.transform", "transform", str(d / "temporal"), str(d / "series.npz"),
        "--out", str(d / "temporal.npy"))
    rec.add("cli.fit_temporal.z", np.load(d / "temporal.npy"))
    run("fit_temporal.info", "info", str(d / "temporal"))

    from nica.causal import make_causal

    pairs = make_causal(2, n_segments=10, n_per_segment=100, n_layers=1, random_state=0)
    np.savez(d / "pairs.npz", x=pairs.x, u=pairs.u)
    for method in ("flow", "ivae", "tcl"):
        run(f"causal_{method}", "causal", str(d / "pairs.npz"), "--method", method, "--max-steps", "60",
            "--json", "--quiet")
    run("select_n", "select-n", str(d / "tall.npz"), "--candidates", "1-3", "--max-steps", "40",
        "--hidden-dim", "16", "--out", str(d / "select"), "--quiet")
    rec.add("cli.select_n.csv", (d / "select" / "elbo.csv").read_text())


def record_sweep(rec: Recorder, tmp: Path) -> None:
    import csv

    import distributed

    from nica.sweep import run_sweep

    config = {
        "data": {"n_sources": 2, "n_segments": 5, "n_per_segment": 40, "n_layers": 2, "seeds": [1]},
        "model": {"seeds": [0, 1], "max_steps": 20, "hidden_dim": 8, "n_layers": 2, "batch_size": 100,
                  "device": "cpu"},
        "grid": {"learning_rate": [1e-2, 3e-3]},
    }
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        run_sweep(config, tmp / "sweep.csv", client=client, progress=False)
    with open(tmp / "sweep.csv", newline="") as fh:
        rows = sorted((without_times(row) for row in csv.DictReader(fh)), key=lambda r: r["run_key"])
    rec.add("sweep.rows", rows)


def record(out: Path) -> None:
    import torch

    import nica

    torch.set_num_threads(1)
    rec = Recorder()
    rec.add("nica_file", str(Path(nica.__file__).resolve()))
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for step in (record_ivae_family, record_resume, record_flows, record_temporal, record_switching,
                     record_tcl_nonsens):
            step(rec, tmp)
            print(f"{step.__name__}: done", flush=True)
        record_select_n(rec)
        record_cli(rec, tmp)
        print("record_cli: done", flush=True)
        record_sweep(rec, tmp)
    rec.save(out, tmp_name)
    print(f"wrote {len(rec.arrays)} arrays and {len(rec.values)} values to {out}")


def compare(before: Path, after: Path) -> int:
    a_arrays, b_arrays = np.load(before / "arrays.npz"), np.load(after / "arrays.npz")
    a_values = json.loads((before / "values.json").read_text())
    b_values = json.loads((after / "values.json").read_text())
    a_values.pop("nica_file", None), b_values.pop("nica_file", None)
    differ, only_before, only_after, same = [], [], [], 0
    shared = sorted(set(a_arrays.files) & set(b_arrays.files))
    arrays_same = sum(a_arrays[k].dtype == b_arrays[k].dtype and a_arrays[k].shape == b_arrays[k].shape
                      and a_arrays[k].tobytes() == b_arrays[k].tobytes() for k in shared)
    print(f"numbers: {arrays_same} of the {len(shared)} arrays both runs recorded are bitwise identical")
    for key in sorted(set(a_arrays.files) | set(b_arrays.files)):
        if key not in b_arrays.files:
            only_before.append(key)
        elif key not in a_arrays.files:
            only_after.append(key)
        else:
            x, y = a_arrays[key], b_arrays[key]
            equal = x.shape == y.shape and x.dtype == y.dtype and x.tobytes() == y.tobytes()
            if equal:
                same += 1
            else:
                differ.append(f"{key}: {x.dtype}{x.shape} vs {y.dtype}{y.shape}"
                              + (f", max |diff| {np.nanmax(np.abs(x - y)):.3g}" if x.shape == y.shape
                                 and x.dtype.kind == "f" else ""))
    for key in sorted(set(a_values) | set(b_values)):
        if key not in b_values:
            only_before.append(key)
        elif key not in a_values:
            only_after.append(key)
        elif a_values[key] == b_values[key]:
            same += 1
        else:
            differ.append(f"{key}: " + "; ".join(_leaf_differences(a_values[key], b_values[key])))
    print(f"{same} outputs bitwise identical, {len(differ)} differ, "
          f"{len(only_before)} only before, {len(only_after)} only after")
    for title, keys in (("DIFFER", differ), ("ONLY BEFORE", only_before), ("ONLY AFTER", only_after)):
        for key in keys:
            print(f"{title}: {key}")
    return 1 if differ else 0


def _leaf_differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Where two JSON values differ, leaf by leaf (at most 6 entries); text by its lines."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            if k not in a or k not in b:
                out.append(f"{path}{k}: {'only after' if k in b else 'only before'}")
            elif a[k] != b[k]:
                out.extend(_leaf_differences(a[k], b[k], f"{path}{k}."))
        return out[:6]
    if isinstance(a, str) and isinstance(b, str) and "\n" in a + b:
        lines = [f"{path}line {i}: {_short(x)} vs {_short(y)}"
                 for i, (x, y) in enumerate(zip(a.splitlines(), b.splitlines())) if x != y]
        return (lines or [f"{path}: line count"])[:6]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        out = []
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                out.extend(_leaf_differences(x, y, f"{path}[{i}]."))
        return out[:6]
    return [f"{path.rstrip('.')}: {_short(a)} vs {_short(b)}"]


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) < 160 else text[:160] + "..."


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "record":
        record(Path(sys.argv[2]))
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        sys.exit(compare(Path(sys.argv[2]), Path(sys.argv[3])))
    else:
        sys.exit(__doc__)
