"""``SwitchingTemporalFlow``: temporal nonlinear ICA whose transition switches with a
hidden Markov regime, fitted by exact maximum likelihood; hooks of the estimator skeleton
(:class:`nica.base.Estimator`: restarts, checkpoints and resume, divergence handling)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

import nica.temporal.hmm as hmm
from nica._random import draw_seed
from nica._threads import fits_on_threads
from nica._validation import AuxEncoder, check_observations
from nica.base.estimator import Estimator, FitData, FitInputs, FitPlan
from nica.base.params import INFERENCE_CHUNK, check_n_components, check_positive_int, resolve_device
from nica.base.registry import register_estimator
from nica.base.restarts import RestartChoice
from nica.flows.projection import InputProjection
from nica.models.base import LatentModule, RestartStack
from nica.temporal._switching_format import SWITCHING_FORMAT
from nica.temporal.rotation import jacobian_rotation, varimax
from nica.temporal.series import Series, aux_encoder, check_series, encoded_aux, windows
from nica.temporal.switching import SwitchingConfig, SwitchingTemporalModule
from nica.training.trainer import LR_SCHEDULES, TrainConfig

#: regime counts tried by ``n_regimes="auto"`` unless ``regime_candidates`` says otherwise
DEFAULT_CANDIDATES = (1, 2, 3, 4, 5, 6)
PREDICT_METHODS = ("posterior", "viterbi")
ROTATIONS = ("auto", "jacobian", "loadings", "none")
#: chunks whose steps the rotation is chosen on (at most), and rows of X for the loadings
ORIENTATION_STEPS, LOADING_ROWS = 768, 50_000
#: features the latents explain less of (R^2) are left out of the varimax rotation
MIN_EXPLAINED = 0.5


def _chunked(parts: list[np.ndarray], lags: int, length: int) -> np.ndarray:
    """Training chunks ``(M, length, k)`` of consecutive steps of each series; a chunk's
    first ``lags`` steps are the past of the next one's first scored step (chunks overlap
    by ``lags``); a series' last, shorter piece is taken as a chunk ending at its last step."""
    stride = length - lags
    out = []
    for p in parts:
        starts = list(range(0, len(p) - length + 1, stride))
        if starts[-1] + length < len(p):
            starts.append(len(p) - length)
        out.extend(p[s:s + length] for s in starts)
    return np.ascontiguousarray(np.stack(out))


@register_estimator("SwitchingTemporalFlow", SWITCHING_FORMAT, model="switching")
class SwitchingTemporalFlow(Estimator):
    """Temporal nonlinear ICA with regime-dependent transitions and hidden Markov regimes.

    x_t = f(z_t) with f a normalising flow (on the top-n principal components of x when
    x has more features than latents), z_t = m_{c_t}(z_{t-1..t-L}, u_t) + exp(s_{c_t}(.))
    * eps_t with independent innovations, and the regime c_t a hidden Markov chain over
    K regimes (:mod:`nica.temporal.switching`). z_t = f^{-1}(x_t) is deterministic, so the
    likelihood summed over all regime paths is exact (the forward algorithm) and is
    maximised directly; the regimes of new series follow by forward-backward.

    Parameters
    ----------
    n_components : latent dimension n (at most the number of features).
    lags : L, how many past latents the transition reads.
    n_regimes : K, an int >= 1 (1: one transition, no hidden regimes), or ``"auto"``:
        each of ``regime_candidates`` is fitted on all but a validation part of the data
        (``validation_fraction`` of the sequences, or the last part of each long series)
        and the one of highest held-out log-likelihood is kept (``regime_scores_``).
    regime_candidates : the K tried by ``"auto"`` (default 1 to 6).
    validation_fraction : the part of the data ``"auto"`` holds out.
    innovation : ``"gaussian"`` or ``"laplace"`` innovations eps.
    sparsity : weight of the penalty on the mean |entry| of the transitions' Jacobians
        d m_k / d z_{t-l} (CtrlNS's sparse transitions); 0 turns it off.
    transition_hidden, transition_layers, transition_activation : each regime's MLP.
    flow, n_flows, n_bins, tail_bound, flow_hidden : the bijection
        (:func:`nica.flows.make_flow_transform`).
    chunk_length : steps per training example (a long series is cut into chunks; a
        shorter sequence is one chunk).
    batch_size : chunks per mini-batch.
    learning_rate, max_steps, lr_schedule : Adam by :func:`nica.training.train`.
    n_restarts, selection : K initialisations of one regime count trained side by side,
        one kept (``"score"``: the highest last-epoch log-likelihood; ``"agreement"``;
        ``"first"``); ``n_regimes="auto"`` fits one per candidate.
    checkpoint_dir, checkpoint_every : checkpoints of a fit of one regime count, so that
        ``fit(X, u, resume=True)`` continues it to the same result.
    standardize : z-score each feature (n = d) or scale the principal components to unit
        variance (n < d) first.
    feature_scaling : with more features than latents (n < d), each feature is divided by
        sd**p before the principal components are taken: ``"sqrt-std"`` (p = 1/2, the
        default), ``"none"`` (p = 0, the components of X as it is) or ``"std"`` (p = 1, the
        correlation matrix's). With the plain components a few features of large variance
        (e.g. a cubic of one latent and its nonlinear harmonics) can take the n slots and
        leave a weakly expressed latent out of the flow's input; ``"std"`` over-weights
        features that are mostly noise. ``"sqrt-std"`` kept the weakest latent better than
        ``"none"`` on 13 of 16 tuning draws of MOSAIC's generator and fitted better on 12 of
        14: docs/results.md (energy-landscape).
    subspace : with more features than latents (n < d), the subspace of the (scaled)
        features the flow sees: ``"deflation"`` (the default; :mod:`nica.flows.deflation`:
        each next direction the one of largest variance that a cubic of the directions
        already chosen leaves unexplained, so that nonlinear harmonics of a strongly
        expressed latent do not take the place of a weakly expressed one) or
        ``"principal"`` (the top principal components, the default before). On 14 tuning
        draws of MOSAIC's generator ``"deflation"`` fitted 0.970-0.995 against 0.870-0.995
        (docs/results.md, energy-landscape).
    extra_components : with more features than latents (n < d), the flow sees the top
        n + ``extra_components`` principal components (at most d) and models its extra
        outputs as white noise (i.i.d. standard Gaussian, no transition, no regime), so
        that the exact likelihood can take into the n latents a latent too weakly expressed
        to be among the top n components.
        0 (the default: the flow on the top n) or an int; ``"auto"``: the smaller of n and
        d - n. An option, not the default: on MOSAIC's tuning seeds it found the latent the
        top n components miss on one seed and lost a strongly coupled latent to the noise
        outputs on three (docs/results.md, energy-landscape).
    u_type : encoding of u (``"auto"``, ``"categorical"``, ``"continuous"``): a known
        label per step (a domain, or the regime itself when it is observed) that the
        transitions read beside the past.
    device, n_threads, random_state, verbose : as the other estimators.

    Attributes
    ----------
    module_, config_ : the fitted :class:`SwitchingTemporalModule` and its config.
    projection_ : the :class:`~nica.flows.projection.InputProjection` from X to the flow.
    n_regimes_ : K fitted; regime_scores_ : ``{K: held-out log-likelihood per step}`` for "auto".
    transition_matrix_ ``(K, K)``, initial_distribution_ ``(K,)`` : the fitted chain.
    history_, aux_encoder_, seed_, device_, n_features_in_, n_steps_, fit_time_ : as the
        other estimators (:class:`nica.base.Estimator`).
    score_ : the last epoch's mean log-likelihood per step, in the units of X (on the
        principal subspace when n < d); restart_score_ the same for every restart.

    Examples
    --------
    >>> from nica.datasets.switching import make_switching
    >>> data = make_switching(4, 2, n_paths=20, sequences_per_path=2, random_state=0)
    >>> model = SwitchingTemporalFlow(4, n_regimes=2, n_flows=1, max_steps=5, random_state=0).fit(data.x)
    >>> model.transform(data.x_test).shape, model.predict_regime(data.x_test).shape
    ((200, 16, 4), (200, 16))
    """

    score_name = "log-likelihood"
    progress_label = "log-likelihood"
    u_required = None
    input_kind = "series"

    def __init__(
        self,
        n_components: int,
        *,
        lags: int = 1,
        n_regimes: int | str = 1,
        regime_candidates: tuple[int, ...] | None = None,
        validation_fraction: float = 0.1,
        innovation: str = "gaussian",
        rotation: str = "auto",
        sparsity: float = 0.0,
        transition_hidden: int = 64,
        transition_layers: int = 3,
        transition_activation: str = "lrelu",
        flow: str = "spline-autoregressive",
        n_flows: int = 3,
        n_bins: int = 8,
        tail_bound: float = 5.0,
        flow_hidden: int = 64,
        chunk_length: int = 32,
        batch_size: int = 32,
        learning_rate: float = 2e-3,
        max_steps: int = 3_000,
        lr_schedule: str = "cosine",
        n_restarts: int = 1,
        selection: str = "score",
        standardize: bool = True,
        feature_scaling: str = "sqrt-std",
        subspace: str = "deflation",
        extra_components: int | str = 0,
        u_type: str = "auto",
        checkpoint_dir: str | Path | None = None,
        checkpoint_every: int = 1_000,
        device: str = "auto",
        n_threads: int | None = 1,
        random_state: int | np.random.Generator | None = None,
        verbose: bool = False,
    ) -> None:
        self.n_components = n_components
        self.lags = lags
        self.n_regimes = n_regimes
        self.regime_candidates = regime_candidates
        self.validation_fraction = validation_fraction
        self.innovation = innovation
        self.rotation = rotation
        self.sparsity = sparsity
        self.transition_hidden = transition_hidden
        self.transition_layers = transition_layers
        self.transition_activation = transition_activation
        self.flow = flow
        self.n_flows = n_flows
        self.n_bins = n_bins
        self.tail_bound = tail_bound
        self.flow_hidden = flow_hidden
        self.chunk_length = chunk_length
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.max_steps = max_steps
        self.lr_schedule = lr_schedule
        self.n_restarts = n_restarts
        self.selection = selection
        self.standardize = standardize
        self.feature_scaling = feature_scaling
        self.subspace = subspace
        self.extra_components = extra_components
        self.u_type = u_type
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose

    # ----------------------------------------------------------------- checks
    def _candidates(self, n_scored: int) -> list[int]:
        """The regime counts to fit; refuses K larger than the steps there are to score."""
        if isinstance(self.n_regimes, str):
            if self.n_regimes != "auto":
                raise ValueError(f"n_regimes must be a positive integer or 'auto', got {self.n_regimes!r}")
            candidates = [check_positive_int(k, "regime_candidates") for k in
                          (self.regime_candidates or DEFAULT_CANDIDATES)]
            if not candidates:
                raise ValueError("regime_candidates is empty")
            if not 0 < self.validation_fraction < 1:
                raise ValueError(f"validation_fraction must be in (0, 1), got {self.validation_fraction!r}")
        else:
            candidates = [check_positive_int(self.n_regimes, "n_regimes")]
        if max(candidates) > n_scored:
            raise ValueError(f"n_regimes={max(candidates)} is larger than the {n_scored} time steps the model "
                             "scores (steps after the first lags of each series); use fewer regimes or more data")
        return sorted(set(candidates))

    def _n_extra(self, n_features: int) -> int:
        """The flow's inputs beyond the latents; refuses a count the features cannot give."""
        n, extra = int(self.n_components), self.extra_components
        if isinstance(extra, str):
            if extra != "auto":
                raise ValueError(f"extra_components must be an int >= 0 or 'auto', got {extra!r}")
            return min(n, n_features - n)
        if isinstance(extra, bool) or not isinstance(extra, (int, np.integer)) or extra < 0:
            raise ValueError(f"extra_components must be an int >= 0 or 'auto', got {extra!r}")
        if n + extra > n_features:
            raise ValueError(f"n_components + extra_components = {n + extra} is more than the {n_features} "
                             f"features of X: at most {n_features - n} extra components")
        return int(extra)

    def _config(self, aux: AuxEncoder, n_regimes: int, n_features: int) -> SwitchingConfig:
        return SwitchingConfig(
            n_latent=self.n_components, lags=self.lags, aux_dim=aux.dim, n_regimes=n_regimes,
            n_extra=self._n_extra(n_features),
            innovation=self.innovation,
            transition_hidden=check_positive_int(self.transition_hidden, "transition_hidden"),
            transition_layers=check_positive_int(self.transition_layers, "transition_layers"),
            transition_activation=self.transition_activation, flow=self.flow,
            n_flows=check_positive_int(self.n_flows, "n_flows"), n_bins=check_positive_int(self.n_bins, "n_bins"),
            tail_bound=float(self.tail_bound), flow_hidden=check_positive_int(self.flow_hidden, "flow_hidden"))

    # ----------------------------------------------------------------- fitting: the skeleton's hooks
    @fits_on_threads
    def fit(self, X: Any, u: Any = None, *, resume: bool = False) -> SwitchingTemporalFlow:
        """Fit to one series ``(T, d)``, several ``(N, T, d)`` or a list of ``(T_i, d)``;
        ``u`` (optional) a known label per step in X's layout (or one per series).
        ``n_regimes="auto"`` fits each candidate K on all but a validation part and keeps
        the one of highest held-out log-likelihood; ``resume`` continues a fit of one K."""
        if self.n_regimes != "auto":
            return self._fit(X, u, resume=resume)
        if resume:
            raise ValueError("resume continues a fit of one regime count; n_regimes='auto' fits every candidate")
        return self._fit_candidates(X, u)

    def _fit_inputs(self, X: Any, u: Any) -> FitInputs:
        """The series (each longer than ``lags``), the settings checked before any work, u's encoding."""
        lags = check_positive_int(self.lags, "lags")
        n = check_positive_int(self.n_components, "n_components")
        series = check_series(X, u, min_length=lags + 1)
        check_n_components(n, series.n_features)
        if not isinstance(self.sparsity, (int, float)) or not 0 <= self.sparsity < math.inf:
            raise ValueError(f"sparsity must be a number >= 0, got {self.sparsity!r}")
        self._candidates(series.n_steps - lags * len(series.x))
        if self.rotation not in ROTATIONS:
            raise ValueError(f"rotation must be one of {ROTATIONS}, got {self.rotation!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be 'constant', 'cosine' or 'plateau', got {self.lr_schedule!r}")
        aux = aux_encoder(series, self.u_type)
        self._config(aux, 1, series.n_features)  # settings checked before any work
        return FitInputs(series, series.u, aux, series.n_features)

    def _fit_plan(self, inputs: FitInputs, n_regimes: int | None = None) -> FitPlan:
        config = self._config(inputs.aux, self._candidates_of(inputs)[0] if n_regimes is None else n_regimes,
                              inputs.n_features)
        train_config = TrainConfig(batch_size=self.batch_size, learning_rate=self.learning_rate,
                                   max_steps=self.max_steps, lr_schedule=self.lr_schedule)
        train_config.validate()
        n_restarts, sparsity = self._n_restarts(), float(self.sparsity)

        def configure(module: LatentModule) -> None:
            for restart in getattr(module, "restarts", [module]):
                restart.sparsity = sparsity

        if n_restarts == 1:
            return FitPlan(lambda: SwitchingTemporalModule(config), train_config, configure)
        return FitPlan(lambda: RestartStack([SwitchingTemporalModule(config) for _ in range(n_restarts)]),
                       train_config, configure)

    def _candidates_of(self, inputs: FitInputs) -> list[int]:
        series = inputs.x
        return self._candidates(series.n_steps - int(self.lags) * len(series.x))

    def _project(self, inputs: FitInputs) -> tuple[InputProjection, list[np.ndarray], list[np.ndarray], np.ndarray]:
        """The projection fitted to X, the flow's input y and the encoded u of every series."""
        series = inputs.x
        x_all, _ = series.concatenated()
        width = int(self.n_components) + self._n_extra(series.n_features)
        projection = InputProjection.fit(x_all, width, self.standardize, self.feature_scaling, self.subspace)
        y = [projection.apply(s) for s in series.x]
        a = np.split(encoded_aux(series, inputs.aux), np.cumsum([len(s) for s in series.x])[:-1])
        return projection, y, a, x_all

    def _chunks_of(self, y: list[np.ndarray], a: list[np.ndarray], device: torch.device,
                   state: dict[str, Any]) -> FitData:
        lags = int(self.lags)
        length = min(lags + check_positive_int(self.chunk_length, "chunk_length"), min(len(s) for s in y))
        y_chunks, a_chunks = _chunked(y, lags, length), _chunked(a, lags, length)
        return FitData(torch.from_numpy(y_chunks).to(device), torch.from_numpy(a_chunks).to(device),
                       (y_chunks, a_chunks), state["projection"].log_jacobian(), state)

    def _fit_data(self, inputs: FitInputs, plan: FitPlan, device: torch.device) -> FitData:
        """Chunks of consecutive steps of the flow's input and of the encoded u."""
        projection, y, a, x_all = self._project(inputs)
        return self._chunks_of(y, a, device, {"projection": projection, "y": y, "a": a, "x": x_all, "scores": {}})

    def _fit_candidates(self, X: Any, u: Any) -> SwitchingTemporalFlow:
        """``n_regimes="auto"``: every candidate K fitted (one restart each) on all but the
        validation part; the one of highest held-out log-likelihood per step is kept."""
        inputs = self._fit_inputs(X, u)
        if self._n_restarts() != 1:
            raise ValueError("n_regimes='auto' fits one restart per regime count; set n_restarts=1")
        candidates = self._candidates_of(inputs)
        projection, y, a, x_all = self._project(inputs)
        seed = draw_seed(self.random_state)
        device = resolve_device(self.device)
        (y_fit, a_fit), (y_val, a_val) = self._validation_split(y, a, int(self.lags), seed)
        fit_data = self._chunks_of(y_fit, a_fit, device, {"projection": projection})
        fits, scores = {}, {}
        for k in candidates:
            fits[k] = self._train_module(self._fit_plan(inputs, k), fit_data, seed, device)
            scores[k] = self._mean_log_likelihood(fits[k][0], y_val, a_val, device)
        module, history = fits[max(scores, key=lambda k: scores[k])]
        state = {"projection": projection, "y": y, "a": a, "x": x_all, "scores": scores}
        self._set_fitted(module, history, inputs, FitData(fit_data.x, fit_data.u, (), fit_data.score_offset, state),
                         seed, device)
        return self

    def _latents_of(self, module: LatentModule, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        z = module.latents(x[:, -1], u)  # the chunks' last steps
        return z if z.dim() == 3 else z[None]

    def _set_outputs(self, inputs: FitInputs, data: FitData, choice: RestartChoice) -> None:
        state = data.state
        projection = state["projection"]
        self._orient(self.module_, projection, state["y"], state["a"], state["x"], self.seed_)
        self.projection_ = projection
        self.n_regimes_, self.regime_scores_ = self.config_.n_regimes, state["scores"]
        self.restart_score_ = choice.fit_scores - projection.log_jacobian()
        self.score_ = float(self.restart_score_[choice.selected])

    def _log_jacobian(self) -> float:
        return self.projection_.log_jacobian()

    def describe_score(self) -> str:
        self._check_fitted()
        chosen = ""
        if self.regime_scores_:
            scores = ", ".join(f"K={k}: {v:.3f}" for k, v in sorted(self.regime_scores_.items()))
            chosen = f", K chosen by held-out log-likelihood per step ({scores})"
        return f"{self.n_regimes_} regime(s){chosen}; log-likelihood {self.score_:.3f} per step in the units of X"

    @torch.no_grad()
    def _orient(self, module: SwitchingTemporalModule, projection: InputProjection, y: list[np.ndarray],
                a: list[np.ndarray], x: np.ndarray, seed: int) -> None:
        """Set ``module.readout`` = R D^{-1}: D the innovations' mean scale per component
        (so that the rotation left open is orthogonal), R chosen by ``rotation``."""
        module.eval()
        lags = module.config.lags
        rule = self.rotation if self.rotation != "auto" else ("loadings" if x.shape[1] > module.config.n_latent
                                                              else "jacobian")
        length = min(lags + self.chunk_length, min(len(s) for s in y))
        y_chunks, a_chunks = _chunked(y, lags, length), _chunked(a, lags, length)
        n_chunks = max(1, ORIENTATION_STEPS // (length - lags))
        rows = np.sort(np.random.default_rng(seed).permutation(len(y_chunks))[:n_chunks])
        device = next(module.parameters()).device  # noqa: F841 - the module's
        jac, proba, log_scale, _ = module.orientation_statistics(torch.from_numpy(y_chunks[rows]).to(device),
                                                                 torch.from_numpy(a_chunks[rows]).to(device))
        jac, proba, log_scale = jac.cpu().double(), proba.cpu().double(), log_scale.cpu().double()
        scale = torch.exp((proba.T[:, :, None] * log_scale).sum((0, 1)) / len(proba))  # (n,)
        rotation = np.eye(len(scale))
        if rule == "jacobian":
            columns = scale.repeat(lags)
            rotation, self.rotation_objective_, self.unrotated_objective_ = jacobian_rotation(
                jac * columns / scale[:, None], proba, seed=seed)
        elif rule == "loadings":
            sample = np.random.default_rng(seed).permutation(len(x))[:LOADING_ROWS]
            features = x[sample].astype(np.float64)
            features = (features - features.mean(0)) / np.where(features.std(0) > 0, features.std(0), 1.0)
            z = module.encode(torch.from_numpy(projection.apply(x[sample])).to(device))[0].cpu().double().numpy()
            z = (z - z.mean(0)) / scale.numpy()
            loadings, residual = np.linalg.lstsq(z, features, rcond=None)[:2]
            explained = 1.0 - residual / len(z) if len(residual) else np.ones(features.shape[1])
            keep = explained >= MIN_EXPLAINED
            rotation = varimax(loadings.T[keep] if keep.sum() >= len(scale) else loadings.T).T
        module.readout = torch.as_tensor(rotation / scale.numpy()[None, :], dtype=module.readout.dtype,
                                         device=module.readout.device)
        self.rotation_rule_ = rule

    def _validation_split(self, y: list[np.ndarray], a: list[np.ndarray], lags: int, seed: int
                          ) -> tuple[tuple[list, list], tuple[list, list]]:
        """Held-out data for ``"auto"``: a random ``validation_fraction`` of the sequences
        when there are 10 or more, else the last part of each series."""
        if len(y) >= 10:
            order = np.random.default_rng(seed).permutation(len(y))
            n_val = max(1, int(round(self.validation_fraction * len(y))))
            val, fit = sorted(order[:n_val]), sorted(order[n_val:])
            return ([y[i] for i in fit], [a[i] for i in fit]), ([y[i] for i in val], [a[i] for i in val])
        cut = [len(s) - max(lags + 1, int(round(self.validation_fraction * len(s)))) for s in y]
        if min(cut) < lags + 1:
            raise ValueError("the series are too short to hold out a validation part for n_regimes='auto'")
        return (([s[:c] for s, c in zip(y, cut)], [v[:c] for v, c in zip(a, cut)]),
                ([s[c - lags:] for s, c in zip(y, cut)], [v[c - lags:] for v, c in zip(a, cut)]))

    # ----------------------------------------------------------------- inference
    def _series(self, X: Any, u: Any = None, min_length: int = 1) -> Series:
        self._check_fitted()
        return check_series(X, u, min_length=min_length, n_features=self.n_features_in_)

    @torch.no_grad()
    def _log_emissions(self, module: SwitchingTemporalModule, y: list[np.ndarray], a: list[np.ndarray],
                       device: torch.device) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Per series: log p(z_t | past, u_t, c_t = k) ``(T - L, K)`` and the flow's
        log-determinant ``(T - L,)``."""
        module.eval()
        lags = module.config.lags
        y_win, a_win = windows(y, lags), windows(a, lags)

        def emissions_and_log_det(yb: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
            e, d, _ = module.emissions(yb, ab)
            return torch.cat([e[:, 0], d[:, 0, None]], dim=-1)  # (rows, K + 1)

        both = self._batched(emissions_and_log_det, y_win, a_win, device=device, size=INFERENCE_CHUNK // (lags + 1))
        sizes = [len(s) - lags for s in y]
        # the chain's sums run in float64: posteriors of long series sum to 1 to rounding
        return list(both[:, :-1].double().split(sizes)), list(both[:, -1].double().split(sizes))

    def _mean_log_likelihood(self, module: SwitchingTemporalModule, y: list[np.ndarray], a: list[np.ndarray],
                             device: torch.device) -> float:
        """Exact log p(y_{L..} | y_{<L}) per scored step, over all series (flow's units)."""
        emission, log_det = self._log_emissions(module, y, a, device)
        log_initial, log_transition = (p.detach().cpu().double() for p in module.log_chain())
        total = sum(float(hmm.log_likelihood(e[None], log_initial, log_transition)[0] + d.sum())
                    for e, d in zip(emission, log_det))
        return total / sum(len(e) for e in emission)

    def _inputs(self, series: Series) -> tuple[list[np.ndarray], list[np.ndarray]]:
        y = [self.projection_.apply(s) for s in series.x]
        a = np.split(encoded_aux(series, self.aux_encoder_), np.cumsum([len(s) for s in series.x])[:-1])
        return y, a

    def transform(self, X: Any, u: Any = None) -> np.ndarray | list[np.ndarray]:
        """Latents z_t = f^{-1}(x_t) of every step, in X's layout (u is not needed)."""
        series = self._series(X)
        x, _ = series.concatenated()
        y = torch.from_numpy(self.projection_.apply(x))
        return series.restore(self._batched(self.module_.latents, y).numpy())

    def inverse_transform(self, Z: Any) -> np.ndarray:
        """Observations x = f(z) (on the principal subspace when n < d): ``(rows, n) -> (rows, d)``."""
        self._check_fitted()
        z = check_observations(Z, "Z", min_samples=1)
        if z.shape[1] != self.config_.n_latent:
            raise ValueError(f"Z has {z.shape[1]} columns but the model has {self.config_.n_latent} latents")
        y = self._batched(self.module_.decode, torch.from_numpy(z))
        return self.projection_.reconstruct(y.numpy()).astype(np.float32)

    def predict_proba_regime(self, X: Any, u: Any = None) -> np.ndarray | list[np.ndarray]:
        """p(c_t = k | the whole series) of every step by forward-backward, in X's layout
        with K columns: ``(T, K)``, ``(N, T, K)`` or a list. The first L steps (no past)
        take the posterior of step L."""
        series = self._series(X, u, min_length=self.config_.lags + 1)
        y, a = self._inputs(series)
        emission, _ = self._log_emissions(self.module_, y, a, self.device_)
        log_initial, log_transition = (p.detach().cpu().double() for p in self.module_.log_chain())
        out = [self._pad(hmm.posteriors(e[None], log_initial, log_transition)[0][0]) for e in emission]
        return series.restore(np.concatenate(out))

    def predict_regime(self, X: Any, u: Any = None, *, method: str = "posterior") -> np.ndarray | list[np.ndarray]:
        """The regime of every step, in X's layout: ``"posterior"`` (the most probable
        regime of each step) or ``"viterbi"`` (the most probable path)."""
        if method not in PREDICT_METHODS:
            raise ValueError(f"method must be one of {PREDICT_METHODS}, got {method!r}")
        if method == "posterior":
            proba = self.predict_proba_regime(X, u)
            return [p.argmax(-1) for p in proba] if isinstance(proba, list) else proba.argmax(-1)
        series = self._series(X, u, min_length=self.config_.lags + 1)
        y, a = self._inputs(series)
        emission, _ = self._log_emissions(self.module_, y, a, self.device_)
        log_initial, log_transition = (p.detach().cpu().double() for p in self.module_.log_chain())
        paths = [self._pad(hmm.viterbi(e[None], log_initial, log_transition)[0]) for e in emission]
        restored = series.restore(np.concatenate(paths)[:, None])
        return [p[:, 0] for p in restored] if isinstance(restored, list) else restored[..., 0]

    def _pad(self, per_step: torch.Tensor) -> np.ndarray:
        """Rows for the scored steps -> rows for every step (the first L repeat step L's)."""
        values = per_step.numpy()
        return np.concatenate([np.repeat(values[:1], self.config_.lags, axis=0), values])

    def score(self, X: Any, u: Any = None) -> float:
        """Exact mean log p(x_t | x_{<t}, u) per step t >= L, regimes summed out, units of X."""
        series = self._series(X, u, min_length=self.config_.lags + 1)
        y, a = self._inputs(series)
        per_step = self._mean_log_likelihood(self.module_, y, a, self.device_)
        lags = self.config_.lags
        scored = np.concatenate([s[lags:] for s in series.x])
        return per_step - self.projection_.log_jacobian() + self.projection_.mean_residual_log_density(scored)

    @property
    def transition_matrix_(self) -> np.ndarray:
        self._check_fitted()
        return self.module_.log_chain()[1].detach().exp().cpu().numpy()

    @property
    def initial_distribution_(self) -> np.ndarray:
        self._check_fitted()
        return self.module_.log_chain()[0].detach().exp().cpu().numpy()



__all__ = ["SwitchingTemporalFlow"]
