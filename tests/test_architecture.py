"""The shape of the package (docs/architecture.md): layers, no import cycle, no module over
600 lines, every module importable alone; and the page's recipes, followed step by step."""

from __future__ import annotations

import ast
import json
import math
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch.nn import functional as F

import nica
from nica.base import ParamsMixin
from nica.baselines import PCA, LinearICA
from nica.cli import main
from nica.experiments import EXPERIMENTS, SIZES, Experiment, Task, read_results, register_experiment, run_experiment
from nica.experiments._plots import lines_by_method
from nica.models.priors import PRIORS, ConditionalPrior, PriorParams, register_prior
from nica.persistence import ESTIMATOR_TYPES, register_estimator, save_model

PACKAGE = Path(nica.__file__).parent
MAX_LINES = 600

#: the layers of docs/architecture.md, bottom to top: a module imports from its own layer
#: or below, never above (a module belongs to the layer of its longest matching prefix)
LAYERS = [
    ("datasets & metrics", ("nica._fs", "nica._model_dir", "nica._random", "nica._threads", "nica._version", "nica._validation", "nica.presets",
                            "nica.datasets", "nica.metrics")),
    ("models", ("nica.models",)),
    ("training", ("nica.training",)),
    ("estimator base", ("nica.base", "nica.persistence", "nica._base", "nica._checkpointing")),
    ("estimator families / model selection", ("nica.ivae", "nica.flows", "nica.temporal", "nica.latent_causal",
                                              "nica.tcl", "nica.baselines", "nica.estimator", "nica._ivae_format",
                                              "nica.model_selection", "nica.model_choice", "nica.plotting",
                                              "nica.demo", "nica.causal", "nica.replication")),
    ("experiments / sweep", ("nica.experiments", "nica.sweep")),
    ("cli", ("nica.cli",)),
    ("the public surface", ("nica",)),
]


# ---------------------------------------------------------------- the import graph
def module_files() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__``)."""
    mods = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        mods[".".join(parts)] = path
    return mods


def import_graph(mods: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the package's modules it imports, wherever the import stands (function-level
    and ``TYPE_CHECKING`` imports count)."""

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    edges: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        base = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                source = node.module or ""
                if node.level:
                    package = base
                    for _ in range(node.level - 1):
                        package = package.rpartition(".")[0]
                    source = f"{package}.{node.module}" if node.module else package
                targets = [source] + [f"{source}.{a.name}" for a in node.names]
            else:
                continue
            for target in targets:
                dep = resolve(target) if target.split(".")[0] == "nica" else None
                if dep and dep != mod:
                    edges[mod].add(dep)
    return edges


def strongly_connected(edges: dict[str, set[str]]) -> list[list[str]]:
    """Groups of modules that import each other, directly or not (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = [stack.pop()]
            while group[-1] != v:
                group.append(stack.pop())
            if len(group) > 1:
                found.append(sorted(group))

    for v in edges:
        if v not in index:
            visit(v)
    return found


def layer_of(module: str) -> int:
    matches = [(len(prefix), i) for i, (_, prefixes) in enumerate(LAYERS) for prefix in prefixes
               if module == prefix or module.startswith(prefix + ".")]
    assert matches, f"{module} is in no layer: add it to LAYERS here and to docs/architecture.md"
    return max(matches)[1]


def test_no_import_cycle():
    assert strongly_connected(import_graph(module_files())) == []


def test_every_import_goes_down_the_layers():
    upward = [f"{mod} ({LAYERS[layer_of(mod)][0]}) imports {dep} ({LAYERS[layer_of(dep)][0]})"
              for mod, deps in import_graph(module_files()).items() for dep in sorted(deps)
              if layer_of(dep) > layer_of(mod)]
    assert upward == []


def test_no_module_over_the_line_limit():
    long = {name: n for name, path in module_files().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_the_cycle_check_finds_a_cycle():
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


IMPORT_ALONE = """
import importlib, json, sys
for name in "torch", "numpy", "scipy", "sklearn", "click", "matplotlib", "zuko":
    importlib.import_module(name)  # third-party modules are imported once, for speed
failed = {}
for module in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "nica" or m.startswith("nica.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(module)
    except Exception as exc:
        failed[module] = f"{type(exc).__name__}: {exc}"
# a fresh registry finds every built-in estimator: load needs no other import
for loaded in [m for m in sys.modules if m == "nica" or m.startswith("nica.")]:
    del sys.modules[loaded]
registry = importlib.import_module("nica.base.registry")
found = {name: t.cls.__name__ for name, t in registry.estimator_types().items()}
print(json.dumps({"failed": failed, "estimators": sorted(n for n, cls in found.items() if n == cls)}))
"""


def test_every_module_imports_alone():
    """Each module imported with no nica module loaded before it (one subprocess for all)."""
    modules = [m for m in module_files() if not m.endswith("__main__")]
    out = subprocess.run([sys.executable, "-c", IMPORT_ALONE, *modules], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["failed"] == {}
    assert result["estimators"] == ["BetaTCVAE", "BetaVAE", "IFlow", "IVAE", "LatentCausalVAE", "SwitchingTemporalFlow", "TCL",
                                    "TemporalIVAE", "VAE"]


# ---------------------------------------------------------------- recipe: a new prior
NODES, WEIGHTS = np.polynomial.hermite.hermgauss(16)


class LogisticPrior(ConditionalPrior):
    """p(z_i | u) = Logistic(mu_i(u), s_i(u)); ``log_scale`` is log s."""

    def log_prob(self, z: torch.Tensor, p: PriorParams) -> torch.Tensor:
        x = (z - p.loc) * torch.exp(-p.log_scale)
        return -p.log_scale - x - 2 * F.softplus(-x)

    def kl_from_gaussian(self, mean: torch.Tensor, logvar: torch.Tensor, p: PriorParams) -> torch.Tensor:
        # E_q[log q] in closed form; E_q[log p] by Gauss-Hermite quadrature (16 nodes)
        nodes = torch.as_tensor(NODES * math.sqrt(2), dtype=mean.dtype, device=mean.device)
        weights = torch.as_tensor(WEIGHTS / math.sqrt(math.pi), dtype=mean.dtype, device=mean.device)
        z = mean[..., None] + torch.exp(0.5 * logvar)[..., None] * nodes
        cross = (self.log_prob(z, PriorParams(p.loc[..., None], p.log_scale[..., None])) * weights).sum(-1)
        neg_entropy = -0.5 * (math.log(2 * math.pi) + 1.0 + logvar)
        return (neg_entropy - cross).sum(-1)


@pytest.fixture
def logistic_prior():
    """``prior="logistic"`` for one test; the registry is left as it was found."""
    register_prior("logistic")(LogisticPrior)
    yield LogisticPrior
    del PRIORS["logistic"]


def test_a_new_prior_registers_and_trains(logistic_prior, tiny_data, fast_params):
    model = nica.IVAE(3, prior="logistic", **fast_params, random_state=0).fit(tiny_data.x, tiny_data.u)
    assert isinstance(model.module_.prior, LogisticPrior)
    assert np.isfinite(model.elbo_) and model.n_steps_ == fast_params["max_steps"]
    assert model.transform(tiny_data.x, tiny_data.u).shape == (len(tiny_data.x), 3)


def test_the_new_priors_kl_matches_monte_carlo(logistic_prior):
    prior = LogisticPrior(2, 3)
    gen = torch.Generator().manual_seed(0)
    mean, logvar = torch.randn(1, 4, 2, generator=gen), torch.randn(1, 4, 2, generator=gen) - 1
    params = prior(torch.eye(3)[[0, 1, 2, 0]])
    z = mean + torch.exp(0.5 * logvar) * torch.randn(200_000, 1, 4, 2, generator=gen)
    log_q = -0.5 * (math.log(2 * math.pi) + logvar + (z - mean) ** 2 / logvar.exp())
    monte_carlo = (log_q - prior.log_prob(z, params)).sum(-1).mean(0)
    torch.testing.assert_close(prior.kl_from_gaussian(mean, logvar, params), monte_carlo, atol=0.02, rtol=0)


def test_a_prior_name_is_not_taken_twice(logistic_prior):
    with pytest.raises(ValueError, match="already registered"):
        register_prior("gaussian")(LogisticPrior)


# ---------------------------------------------------------------- recipe: a new estimator
class WhiteningFormat:
    """The save format of :class:`Whitening`: its mean and projection as tensors."""

    def config(self, model: Whitening) -> dict[str, Any]:
        return {"n_features": model.n_features_in_}

    def tensors(self, model: Whitening) -> dict[str, torch.Tensor]:
        return {"mean": torch.from_numpy(model.mean_), "projection": torch.from_numpy(model.projection_)}

    def rebuild(self, cls: type, params: dict[str, Any], config: dict[str, Any]) -> Whitening:
        model = cls(**params)
        model.n_features_in_ = int(config["n_features"])
        return model

    def load_tensors(self, model: Whitening, state: dict[str, torch.Tensor], format_version: int,
                     device: torch.device) -> None:
        model.mean_, model.projection_ = state["mean"].numpy(), state["projection"].numpy()
        if model.projection_.shape != (model.n_features_in_, model.n_components):
            raise ValueError(f"the projection has shape {model.projection_.shape}")

    def describe(self, model: Whitening) -> dict[str, Any]:
        return {"data": {"n_features": model.n_features_in_, "n_components": model.n_components}}


class Whitening(ParamsMixin):
    """The leading principal components of X scaled to unit variance: a stand-in estimator."""

    def __init__(self, n_components: int = 2) -> None:
        self.n_components = n_components

    def fit(self, X: Any, u: Any = None) -> Whitening:
        x = np.asarray(X, dtype=np.float64)
        self.mean_ = x.mean(0)
        variances, axes = np.linalg.eigh(np.cov(x - self.mean_, rowvar=False))
        top = np.argsort(variances)[::-1][: self.n_components]
        self.projection_ = np.ascontiguousarray(axes[:, top] / np.sqrt(variances[top]))
        self.n_features_in_ = x.shape[1]
        return self

    def transform(self, X: Any, u: Any = None) -> np.ndarray:
        return (np.asarray(X, dtype=np.float64) - self.mean_) @ self.projection_

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        return save_model(self, path, overwrite=overwrite)


@pytest.fixture
def whitening():
    """``Whitening`` registered for one test; the registry is left as it was found."""
    register_estimator("Whitening", WhiteningFormat())(Whitening)
    yield Whitening
    del ESTIMATOR_TYPES["Whitening"]


def test_a_new_estimator_saves_and_loads_without_an_edit_to_persistence(whitening, tiny_data, tmp_path):
    model = Whitening(2).fit(tiny_data.x)
    model.save(tmp_path / "model")
    loaded = nica.load(tmp_path / "model")
    assert type(loaded) is Whitening and loaded.get_params() == {"n_components": 2}
    np.testing.assert_allclose(loaded.transform(tiny_data.x), model.transform(tiny_data.x))
    info = nica.persistence.model_info(tmp_path / "model")
    assert info["estimator"] == "Whitening" and info["data"] == {"n_features": 3, "n_components": 2}


def test_a_subclass_of_ivae_registers_with_the_ivae_format(tiny_data, fast_params, tmp_path):
    from nica.ivae import IVAE_FORMAT

    class LaplaceIVAE(nica.IVAE):
        """An IVAE with a Laplace prior by default."""

    register_estimator("LaplaceIVAE", IVAE_FORMAT)(LaplaceIVAE)
    try:
        model = LaplaceIVAE(3, prior="laplace", **fast_params, random_state=0).fit(tiny_data.x, tiny_data.u)
        loaded = nica.load(model.save(tmp_path / "model"))
        assert type(loaded) is LaplaceIVAE
        np.testing.assert_array_equal(loaded.transform(tiny_data.x, tiny_data.u),
                                      model.transform(tiny_data.x, tiny_data.u))
    finally:
        del ESTIMATOR_TYPES["LaplaceIVAE"]


# ---------------------------------------------------------------- recipe: a new experiment
@dataclass(frozen=True)
class LinearFloorConfig:
    seeds: int
    n_sources: tuple[int, ...]
    n_segments: int
    n_per_segment: int


class LinearFloor(Experiment):
    """Linear ICA and PCA on the nonlinear benchmark: the floor a nonlinear method must beat."""

    name = "linear-floor"
    figure = "(none)"
    title = "MCC of linear ICA and PCA on the nonlinear benchmark"
    setting = "n_sources"
    paper = "not in the paper"
    configs = {size: LinearFloorConfig(seeds=1, n_sources=(2, 3), n_segments=5, n_per_segment=40)
               for size in SIZES}

    def tasks(self, config: LinearFloorConfig, seeds: list[int], size: str) -> list[Task]:
        return self.grid(size, seeds, ("LinearICA", "PCA"), config.n_sources)

    def run(self, task: Task, config: LinearFloorConfig) -> list[dict[str, Any]]:
        n = int(task.value)
        data = nica.make_nonstationary(n, n_segments=config.n_segments, n_per_segment=config.n_per_segment,
                                       random_state=task.data_seed)
        model = LinearICA(n, random_state=task.model_seed) if task.method == "LinearICA" else PCA(n)
        start = time.perf_counter()
        z = model.fit(data.x).transform(data.x)
        return [task.row(mcc=nica.mean_corr_coef(data.s, z), seconds=time.perf_counter() - start)]

    def plot(self, rows: list[dict[str, Any]], config: LinearFloorConfig, ax: Any) -> None:
        lines_by_method(ax, rows, xlabel="sources n")


@pytest.fixture
def linear_floor():
    """``nica reproduce linear-floor`` for one test; the registry is left as it was found."""
    register_experiment(LinearFloor())
    yield
    del EXPERIMENTS["linear-floor"]


def test_a_new_experiment_runs_from_the_api_and_the_command_line(linear_floor, tmp_path):
    result = run_experiment("linear-floor", size="smoke", out=tmp_path / "api")
    assert len(result.rows) == 4 and result.n_failed == 0
    assert result.png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    listed = CliRunner().invoke(main, ["reproduce", "--list"])
    assert "linear-floor" in listed.output
    ran = CliRunner().invoke(main, ["reproduce", "linear-floor", "--smoke", "--out", str(tmp_path / "cli")])
    assert ran.exit_code == 0, ran.output
    from_cli, from_api = read_results(tmp_path / "cli" / "linear-floor.csv"), read_results(result.csv_path)
    assert [r["mcc"] for r in from_cli] == [r["mcc"] for r in from_api]
