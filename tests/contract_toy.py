"""A toy estimator added the way docs/architecture.md says: its own class and module and one
registration, nothing edited elsewhere. ``tests/test_contract.py`` imports it, and the
contract suite then runs on it as on every built-in estimator.

Linear nonstationary ICA as a flow: z = W x (W square, K restarts stacked), each z_i
Gaussian with a variance per label of u; fitted by exact maximum likelihood,
log p(x | u) = log N(W x; 0, diag(exp(v_u))) + log |det W|.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nica.base import Estimator, FitData, FitInputs, FitPlan, register_estimator
from nica.base.formats import fitted_entries, restarts_entry, restore_fitted_entries, restore_restarts_entry
from nica.models import LatentModule, LossOutput
from nica.persistence import load_module_state
from nica.training import TrainConfig

LOG_2PI = math.log(2 * math.pi)


@dataclass
class ToyConfig:
    n_latent: int
    n_labels: int
    n_models: int = 1

    def to_dict(self) -> dict:
        return asdict(self)


class ToyModule(LatentModule):
    """z = W x and a log-variance per label and latent, for K stacked models."""

    def __init__(self, config: ToyConfig) -> None:
        super().__init__()
        self.config = c = config
        self.weight = nn.Parameter(torch.eye(c.n_latent).repeat(c.n_models, 1, 1)
                                   + 0.1 * torch.randn(c.n_models, c.n_latent, c.n_latent))
        self.log_var = nn.Parameter(torch.zeros(c.n_models, c.n_labels, c.n_latent))

    def latents(self, x: torch.Tensor, u: torch.Tensor | None = None) -> torch.Tensor:
        return torch.einsum("kij,bj->kbi", self.weight, x)

    def log_prob(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        z = self.latents(x, u)
        log_var = torch.einsum("bl,kln->kbn", u, self.log_var)
        density = -0.5 * (LOG_2PI + log_var + z ** 2 * torch.exp(-log_var)).sum(-1)
        return density + torch.linalg.slogdet(self.weight)[1][:, None]

    def loss(self, x: torch.Tensor, u: torch.Tensor, *, n_data: int, generator: Any = None) -> LossOutput:
        log_px = self.log_prob(x, u)
        return LossOutput(-log_px.mean(-1), log_px.detach(), log_px.detach(), torch.zeros_like(log_px))

    def select(self, k: int) -> ToyModule:
        with torch.random.fork_rng(devices=[]):  # its random init is overwritten
            single = ToyModule(ToyConfig(self.config.n_latent, self.config.n_labels, 1))
        single.load_state_dict({name: value[k:k + 1] for name, value in self.state_dict().items()})
        return single.eval()


class ToyFormat:
    def config(self, model: Any) -> dict[str, Any]:
        return {**fitted_entries(model), "restarts": restarts_entry(model, score=model.restart_score_)}

    def tensors(self, model: Any) -> dict[str, torch.Tensor]:
        return model.module_.state_dict()

    def rebuild(self, cls: type, params: dict[str, Any], config: dict[str, Any]) -> Any:
        model = cls(**params)
        model.config_ = ToyConfig(**config["module"])
        with torch.random.fork_rng(devices=[]):  # its random init is overwritten by the weights
            model.module_ = ToyModule(model.config_)
        restore_fitted_entries(model, config, model.config_.n_latent)
        restore_restarts_entry(model, config["restarts"])
        model.restart_score_ = np.asarray(config["restarts"]["score"])
        model.score_ = float(model.restart_score_[model.selected_restart_])
        model.n_features_in_, model.feature_names_in_ = model.config_.n_latent, None
        model.n_steps_, model.fit_time_ = model.history_.n_steps, model.history_.fit_time
        return model

    def load_tensors(self, model: Any, state: dict[str, torch.Tensor], format_version: int,
                     device: torch.device) -> None:
        load_module_state(model.module_, state, device)
        model.device_ = device

    def describe(self, model: Any) -> dict[str, Any]:
        history = model.history_
        return {"data": {"n_features": model.n_features_in_, "n_components": model.n_components,
                         "u": model.aux_encoder_.describe()},
                "training": {"n_steps": history.n_steps, "n_epochs": len(history.score), "fit_time": history.fit_time,
                             "stopped_early": history.stopped_early, "score_name": "log-likelihood",
                             "final_score": model.score_, "score": list(history.score)},
                "restarts": {"n_restarts": len(model.restart_score_), "selected": model.selected_restart_}}


@register_estimator("ToyLinearICA", ToyFormat(), model="toy-linear-ica")
class ToyLinearICA(Estimator):
    """Linear ICA of nonstationary variances, by maximum likelihood (the toy of the contract suite)."""

    score_name = "log-likelihood"
    progress_label = "log-lik."
    components_reason = "; ToyLinearICA is square"

    def __init__(self, n_components: int, *, learning_rate: float = 0.05, max_steps: int = 200,
                 batch_size: int = 128, n_restarts: int = 1, selection: str = "score", u_type: str = "auto",
                 checkpoint_dir: str | Path | None = None, checkpoint_every: int = 1_000, device: str = "cpu",
                 n_threads: int | None = 1, random_state: int | np.random.Generator | None = None,
                 verbose: bool = False) -> None:
        self.n_components = n_components
        self.learning_rate = learning_rate
        self.max_steps = max_steps
        self.batch_size = batch_size
        self.n_restarts = n_restarts
        self.selection = selection
        self.u_type = u_type
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose

    def _fit_plan(self, inputs: FitInputs) -> FitPlan:
        if inputs.n_features != self.n_components:
            raise ValueError(f"n_components={self.n_components} but X has {inputs.n_features} features; "
                             "ToyLinearICA is square")
        if inputs.aux.kind != "categorical":
            raise ValueError("ToyLinearICA needs labels u")
        config = ToyConfig(inputs.n_features, inputs.aux.dim, self._n_restarts())
        train_config = TrainConfig(batch_size=self.batch_size, learning_rate=self.learning_rate,
                                   max_steps=self.max_steps)
        train_config.validate()
        return FitPlan(lambda: ToyModule(config), train_config)

    def _fit_data(self, inputs: FitInputs, plan: FitPlan, device: torch.device) -> FitData:
        x_mean, x_scale = inputs.x.mean(0), inputs.x.std(0)
        x = ((inputs.x - x_mean) / x_scale).astype(np.float32)
        u = inputs.aux.transform(inputs.u)
        return FitData(torch.from_numpy(x).to(device), torch.from_numpy(u).to(device), (x, u),
                       float(np.log(x_scale).sum()), {"x_mean": x_mean, "x_scale": x_scale})

    def _set_outputs(self, inputs: FitInputs, data: FitData, choice: Any) -> None:
        self.x_mean_, self.x_scale_ = data.state["x_mean"], data.state["x_scale"]
        self.restart_score_ = choice.fit_scores - data.score_offset
        self.score_ = float(self.restart_score_[choice.selected])

    def _standardized(self, X: Any) -> torch.Tensor:
        self._check_fitted()
        from nica.base.params import check_new_observations

        x = check_new_observations(X, self.n_features_in_)
        return torch.from_numpy(((x - self.x_mean_) / self.x_scale_).astype(np.float32))

    def transform(self, X: Any, u: Any = None) -> np.ndarray:
        x = self._standardized(X)
        return self._batched(lambda xb: self.module_.latents(xb)[0], x).numpy()

    def score_samples(self, X: Any, u: Any = None) -> np.ndarray:
        x = self._standardized(X)
        u_t = torch.from_numpy(self.aux_encoder_.transform(u))
        return self._batched(lambda xb, ub: self.module_.log_prob(xb, ub)[0], x, u_t).numpy() \
            - float(np.log(self.x_scale_).sum())
