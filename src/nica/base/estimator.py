"""The estimator skeleton: what every nica estimator does the same way, written once.

:class:`Estimator` owns ``fit``: checking X and u (and ``n_components``) and encoding u,
the fit's seed, checkpoints and exact ``resume``, restarts trained side by side and the
choice of the kept one, divergence (the estimator stays fitted with its last good weights,
then the error is raised), the fitted attributes every estimator has, the check that it is
fitted, chunked inference and ``save`` through the format registry. A family (the iVAE,
the flow, the temporal model, TCL) supplies hooks:

- :meth:`Estimator._fit_plan` its module and optimisation settings (:class:`FitPlan`);
- :meth:`Estimator._fit_data` what the trainer reads (standardised X, encoded u:
  :class:`FitData`);
- :meth:`Estimator._fit_scores` each restart's training score (default: the last epoch's);
- :meth:`Estimator._set_outputs` its own fitted attributes (``score_`` among them);

and, where its input is not a table ``(n_samples, n_features)`` (the temporal model's
series), :meth:`Estimator._fit_inputs`. A new estimator is a subclass with these hooks and
one registration (:func:`nica.base.registry.register_estimator`); docs/architecture.md
has the recipe and ``tests/test_contract.py`` the checks every registered estimator passes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from nica._threads import fits_on_threads
from nica._validation import AuxEncoder, check_observations
from nica.base.checkpointing import fit_checkpointing
from nica.base.params import (
    INFERENCE_CHUNK,
    NotFittedError,
    ParamsMixin,
    check_n_components,
    log_jacobian,
    resolve_device,
    seeded_init,
)
from nica.base.restarts import RestartChoice, check_restarts, choose_restart, selection_rows
from nica.datasets.features import feature_names
from nica.datasets.streaming import RowSource, is_out_of_core
from nica.datasets.tabular import split_aux
from nica.models.base import LatentModule
from nica.persistence import save_model
from nica.training import distributed
from nica.training.trainer import TrainConfig, TrainHistory, TrainingDivergedError, gather_rows, train


@dataclass
class FitInputs:
    """What ``fit`` made of X and u before anything else.

    ``x``: the observations, ``(n_samples, n_features)`` float32 (or the out-of-core array
    itself, or a family's own form such as a series); ``u``: u as given (a column name
    resolved); ``aux``: its encoding (kind ``"none"`` without u); ``n_features``: d;
    ``feature_names``: X's column names, or None.
    """

    x: Any
    u: Any
    aux: AuxEncoder
    n_features: int
    feature_names: np.ndarray | None = None


@dataclass
class FitPlan:
    """A family's settings for one fit: ``build_module()`` (called under the fit's seed)
    builds the module, every restart stacked; ``train_config`` the optimisation;
    ``configure(module)`` sets the module's training settings (its objective, a fast path)."""

    build_module: Callable[[], LatentModule]
    train_config: TrainConfig
    configure: Callable[[LatentModule], None] | None = None


@dataclass
class FitData:
    """What the trainer reads: ``x`` ``(N, ...)`` (a tensor on the device, or a reader of an
    out-of-core array), ``u`` ``(N, aux_dim)`` (a tensor or one-hot rows); ``identity``:
    arrays that identify the data in a checkpoint's fingerprint; ``score_offset``: the
    log-Jacobian per sample of X's standardisation (training scores less it are in the
    units of X); ``state``: the family's own record of the preparation (e.g. X's scaling)."""

    x: Any
    u: Any
    identity: tuple[np.ndarray, ...]
    score_offset: float = 0.0
    state: dict[str, Any] = field(default_factory=dict)


class fitted_alias:  # noqa: N801 - used like a property
    """A fitted attribute kept under another name (``IVAE.elbo_`` is ``score_``)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        return getattr(obj, self.name)

    def __set__(self, obj: Any, value: Any) -> None:
        setattr(obj, self.name, value)


class Estimator(ParamsMixin):
    """Base of every nica estimator (module docstring): ``fit`` and the shared fitted state.

    Fitted attributes it sets: ``module_`` (the kept restart's module), ``restarts_module_``
    (every restart stacked), ``config_``, ``history_`` (:class:`nica.training.TrainHistory`),
    ``selected_restart_``, ``restart_scores_`` (each restart's score under ``selection``),
    ``restart_agreement_`` (MCC between restarts' latents, None for one), ``aux_encoder_``,
    ``feature_names_in_``, ``seed_``, ``device_``, ``n_features_in_``, ``n_steps_``,
    ``fit_time_``; the family adds ``score_``, the kept restart's training score per
    sample in the units of X, which :attr:`score_name` names.

    A subclass's ``__init__`` stores its parameters (the scikit-learn convention); the
    skeleton reads ``n_components``, ``u_type``, ``device``, ``n_threads``,
    ``random_state``, ``verbose`` and, where the family has them, ``n_restarts``,
    ``selection``, ``checkpoint_dir`` and ``checkpoint_every``.
    """

    #: what ``score_`` and :meth:`score` measure, in words
    score_name: ClassVar[str] = "score"
    #: the progress bar's label of the training score
    progress_label: ClassVar[str] = "ELBO"
    #: why n_components may not exceed the number of features (follows the error)
    components_reason: ClassVar[str] = ""
    #: the error when fit gets no u (None: u is optional)
    u_required: ClassVar[str | None] = "u is required: the model's prior p(z | u) is conditioned on it"
    #: whether the model reads u at all (a VAE ignores it)
    uses_u: ClassVar[bool] = True
    #: X may be an out-of-core array (memory-mapped .npy, HDF5, zarr) read batch by batch
    streams: ClassVar[bool] = False
    #: the fit is data-parallel under torchrun (DDP)
    data_parallel: ClassVar[bool] = False
    #: what X is: ``"table"`` ``(n_samples, n_features)``, or ``"series"`` (time steps)
    input_kind: ClassVar[str] = "table"

    # ----------------------------------------------------------------- fitting
    @fits_on_threads
    def fit(self, X: Any, u: Any = None, *, resume: bool = False) -> Estimator:
        """Fit the model.

        Parameters
        ----------
        X : ``(n_samples, n_features)`` observations: an array, a pandas DataFrame of
            numeric columns, an AnnData (its ``X``) or a scipy sparse matrix.
        u : the auxiliary variable: ``(n_samples,)`` labels, ``(n_samples, n_labels)``
            one-hot, or ``(n_samples, m)`` continuous values; or a column name of X.
        resume : continue from the checkpoint in ``checkpoint_dir`` (if there is one), to
            the same model as an uninterrupted fit on the same data and settings.

        Returns
        -------
        self

        Raises
        ------
        nica.training.TrainingDivergedError : the loss stayed non-finite despite lowering
            the learning rate; the estimator is fitted with the last good state first.
        """
        return self._fit(X, u, resume=resume)

    def _fit(self, X: Any, u: Any, *, resume: bool = False,
             on_epoch: Callable[[LatentModule, FitData, int | None, TrainHistory | None], None] | None = None,
             ) -> Estimator:
        """:meth:`fit`; ``on_epoch(module, data, epoch, history)`` is called before training
        (``epoch`` and ``history`` None) and after every epoch."""
        inputs = self._fit_inputs(X, u)
        self._n_restarts()  # checked for every family, before its own settings
        plan = self._fit_plan(inputs)
        device = resolve_device(self.device)
        if self.data_parallel:
            device = distributed.setup(device)
        data = self._fit_data(inputs, plan, device)
        checkpoint, seed = fit_checkpointing(self, data.identity, resume)
        # fitted state is assigned only after training, so that a refit with bad settings
        # leaves the previous fit consistent and usable
        try:
            module, history = self._train_module(plan, data, seed, device, checkpoint=checkpoint, resume=resume,
                                                 on_epoch=on_epoch)
        except TrainingDivergedError as exc:  # keep the last good model, then report
            self._set_fitted(exc.module, exc.history, inputs, data, seed, device)
            raise
        self._set_fitted(module, history, inputs, data, seed, device)
        return self

    def _train_module(self, plan: FitPlan, data: FitData, seed: int, device: torch.device, *,
                      checkpoint: Any = None, resume: bool = False,
                      on_epoch: Callable[..., None] | None = None) -> tuple[LatentModule, TrainHistory]:
        """Build ``plan``'s module under ``seed`` and train it on ``data``: the module (in
        its last good state) and its history. A ``TrainingDivergedError`` carries both
        (``module``, ``history``)."""
        module = seeded_init(plan.build_module, seed).to(device)
        if plan.configure is not None:
            plan.configure(module)
        generator = torch.Generator(device=device).manual_seed(seed + 1)
        observer = None
        if on_epoch is not None:
            on_epoch(module, data, None, None)
            observer = lambda epoch, history: on_epoch(module, data, epoch, history)  # noqa: E731
        try:
            history = train(module, data.x, data.u, plan.train_config, generator=generator, progress=self.verbose,
                            checkpoint=checkpoint, resume=resume, score_offset=data.score_offset,
                            score_name=self.progress_label, on_epoch=observer)
        except TrainingDivergedError as exc:
            exc.module = module
            raise
        return module, history

    def fit_transform(self, X: Any, u: Any = None) -> Any:
        """``fit(X, u)`` then ``transform(X, u)``."""
        return self.fit(X, u).transform(X, u)

    def _fit_inputs(self, X: Any, u: Any) -> FitInputs:
        """X and u checked, ``n_components`` checked against X, u encoded (tables)."""
        X, u = split_aux(X, u)
        if not self.uses_u:
            u = None
        names = feature_names(X)
        x = X if self.streams and is_out_of_core(X) else check_observations(X, "X")
        check_n_components(self.n_components, x.shape[1], reason=self.components_reason)
        self._check_observations(x)
        return FitInputs(x, u, self._encode_u(u, x.shape[0]), x.shape[1], names)

    def _n_restarts(self) -> int:
        """``n_restarts`` checked (with ``selection``); 1 for an estimator without restarts."""
        return check_restarts(getattr(self, "n_restarts", 1), getattr(self, "selection", "score"))

    def _check_observations(self, x: Any) -> None:
        """A family's own check of X (e.g. binary values for a Bernoulli decoder)."""

    def _encode_u(self, u: Any, n_samples: int) -> AuxEncoder:
        """u's encoding fitted to the data; without u, ``kind="none"`` (or the error of a
        model that needs u)."""
        if u is not None:
            return AuxEncoder(self.u_type).fit(u, n_samples)
        if self.u_required is not None:
            raise ValueError(self.u_required)
        return AuxEncoder("continuous", kind="none")

    def _fit_plan(self, inputs: FitInputs) -> FitPlan:  # pragma: no cover - abstract
        """The module to build and the optimisation settings (parameters checked here)."""
        raise NotImplementedError

    def _fit_data(self, inputs: FitInputs, plan: FitPlan, device: torch.device) -> FitData:  # pragma: no cover
        """The trainer's inputs on ``device``."""
        raise NotImplementedError

    def _fit_scores(self, module: LatentModule, history: TrainHistory, data: FitData) -> np.ndarray:
        """Each restart's training score ``(K,)`` (the ``"score"`` rule reads it): by default
        the last epoch's mean, in the training data's units (NaN when no epoch ended)."""
        return np.asarray(history.model_score or [np.nan] * module.n_models, dtype=float)

    def _restart_latents(self, module: LatentModule, data: FitData, seed: int) -> np.ndarray:
        """Every restart's latents on the seeded rows the agreement rule compares ``(K, rows, n)``."""
        rows = torch.from_numpy(selection_rows(len(data.x), seed)).to(data.u.device)
        with torch.no_grad():
            return self._latents_of(module, gather_rows(data.x, rows), data.u[rows]).cpu().numpy()

    def _latents_of(self, module: LatentModule, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """The latents of every restart of ``module`` for training rows x, u: ``(K, rows, n)``."""
        return module.latents(x, u)

    def _set_fitted(self, module: LatentModule, history: TrainHistory, inputs: FitInputs, data: FitData,
                    seed: int, device: torch.device) -> None:
        """Choose the kept restart and assign every fitted attribute."""
        module.eval()
        fit_scores = self._fit_scores(module, history, data)
        choice = choose_restart(fit_scores, getattr(self, "selection", "score"),
                                lambda: self._restart_latents(module, data, seed))
        self.restarts_module_ = module
        self.module_ = module.select(choice.selected).eval()
        self.config_ = self.module_.config
        self.history_ = history
        self.selected_restart_ = choice.selected
        self.restart_scores_ = choice.scores
        self.restart_agreement_ = choice.agreement
        self.aux_encoder_ = inputs.aux
        self.feature_names_in_ = inputs.feature_names
        self.seed_, self.device_ = seed, device
        self.n_features_in_ = inputs.n_features
        self.n_steps_, self.fit_time_ = history.n_steps, history.fit_time
        self._set_outputs(inputs, data, choice)

    def _set_outputs(self, inputs: FitInputs, data: FitData, choice: RestartChoice) -> None:  # pragma: no cover
        """The family's own fitted attributes, ``score_`` among them."""
        raise NotImplementedError

    # ----------------------------------------------------------------- fitted state
    def _check_fitted(self) -> None:
        """Raise :class:`nica.NotFittedError` before ``fit`` (or :func:`nica.load`)."""
        if not hasattr(self, "module_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit first")

    @torch.no_grad()
    def _batched(self, fn: Callable[..., torch.Tensor], x: Any, *others: Any, dim: int = 0,
                 device: torch.device | None = None, size: int | None = None) -> torch.Tensor:
        """``fn`` over blocks of ``size`` rows (default ``INFERENCE_CHUNK``), on the fitted
        device: of x (a tensor, an array, or a reader of an out-of-core X) and the same
        rows of ``others``; the results on the CPU, concatenated along ``dim``."""
        return batched(fn, x, *others, device=self.device_ if device is None else device, dim=dim, size=size)

    def _log_jacobian(self) -> float:
        """log |d x_std / d x| per sample of the fitted standardisation (``x_scale_``):
        converts log-densities and ELBOs of standardised X back to the units of X."""
        return log_jacobian(self.x_scale_)

    def describe_score(self) -> str:
        """``score_`` in words, as ``nica fit`` reports it (a family says how it was measured)."""
        self._check_fitted()
        return f"{self.score_name} {self.score_:.3f} per sample in the units of X"

    def score(self, X: Any, u: Any = None) -> float:
        """The mean of :meth:`score_samples`: the model's score per sample (what
        :attr:`score_name` says); higher is better."""
        return float(self.score_samples(X, u).mean())

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the fitted model to directory ``path`` (JSON config + safetensors weights);
        :func:`nica.load` reads it back."""
        self._check_fitted()
        return save_model(self, path, overwrite=overwrite)


@torch.no_grad()
def batched(fn: Callable[..., torch.Tensor], x: Any, *others: Any, device: torch.device, dim: int = 0,
            size: int | None = None) -> torch.Tensor:
    """The one chunked-inference loop: ``fn(x_block, *other_blocks)`` over blocks of ``size``
    rows, each moved to ``device`` (tensors, numpy arrays, one-hot rows; x may also be a
    :class:`~nica.datasets.streaming.RowSource`, read from disk a block at a time); the
    results on the CPU, concatenated along ``dim``. ``size`` defaults to ``INFERENCE_CHUNK``."""
    size = INFERENCE_CHUNK if size is None else size
    blocks = x.chunks(size) if isinstance(x, RowSource) else (x[start:start + size]
                                                             for start in range(0, len(x), size))
    out = []
    for i, block in enumerate(blocks):
        start = i * size
        out.append(fn(_on(block, device), *(_on(t[start:start + size], device) for t in others)).cpu())
    return torch.cat(out, dim=dim)


def _on(block: Any, device: torch.device) -> torch.Tensor:
    if isinstance(block, np.ndarray):
        block = torch.from_numpy(np.ascontiguousarray(block))
    return block.to(device)


__all__ = ["Estimator", "FitData", "FitInputs", "FitPlan", "batched", "fitted_alias"]
