"""Time-contrastive learning (TCL; Hyvärinen & Morioka, NeurIPS 2016) in PyTorch.

An MLP feature extractor h(x) followed by multinomial logistic regression is trained to
tell which segment u each observation came from. The last hidden layer has an absolute
value (or square) nonlinearity, so at the optimum its n features are, up to a linear map,
the sources' u-modulated sufficient statistics (|s_i| or s_i^2 for variance modulation;
Theorem 1 of the TCL paper); linear ICA on the features then separates them.

As in the authors' code (used by the iVAE paper for its comparison): X is PCA-whitened,
hidden layers are maxout units (2 pieces) of width 2n, the feature layer has width n and
an ``abs`` nonlinearity, and FastICA runs on the features after the ``abs``; the
estimates therefore match |s_i| (or s_i^2), not the signed sources, and should be
scored against those (e.g. ``mean_corr_coef(s ** 2, z)``, or Spearman on ``abs(s)``).
Deviations: Adam and the shared trainer's schedule instead of SGD with momentum,
exponential decay, weight decay 1e-4 and a first MLR-only phase.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from nica.base.params import (
    INFERENCE_CHUNK,
    ParamsMixin,
    check_fitted,
    check_n_components,
    check_new_observations,
    check_positive_int,
    chunks,
    resolve_device,
    seeded_init,
)
from nica._random import draw_seed
from nica._threads import fits_on_threads
from nica._validation import AuxEncoder, check_observations
from nica.baselines.linear import PCA, LinearICA
from nica.tcl.network import FEATURE_NONLINEARITIES, Maxout, TCLNetwork
from nica.training.trainer import TrainConfig, train

class TCL(ParamsMixin):
    """Time-contrastive learning: nonlinear ICA by classifying segments, then linear ICA.

    Parameters
    ----------
    n_components : number of sources n (at most the number of features).
    hidden_dim : width of the hidden layers; ``"auto"`` is 2 n, as the authors.
    n_layers : linear maps in the feature extractor (the authors match the number of
        mixing layers; the benchmark's default is 3).
    activation : ``"maxout"`` (the TCL paper) or an :data:`~nica.models.networks.ACTIVATIONS` name.
    feature_nonlinearity : ``"abs"`` (the TCL paper) or ``"square"``.
    batch_size, learning_rate, max_steps, lr_schedule, n_iter_no_change, tol : Adam
        optimisation by :func:`nica.training.train` (early stopping on the training
        log-likelihood of the labels). Batch 512 as the authors.
    ica_max_iter : iteration budget of the final FastICA.
    device : ``"auto"``, ``"cpu"``, ``"cuda"``, ...
    n_threads : torch CPU threads during ``fit`` (1 by default; None: torch's setting),
        as :class:`nica.IVAE`.
    random_state : int, ``numpy.random.Generator`` or None; seeds the network, the
        batches and FastICA; resolved once per fit.
    verbose : show a progress bar during fit.

    Attributes
    ----------
    module_ : the fitted :class:`TCLNetwork`; whitener_ : the input :class:`~nica.baselines.PCA`;
    ica_ : the :class:`~nica.baselines.LinearICA` on the features.
    classification_accuracy_ : accuracy on the training data after fit.
    classes_ : the segment labels, in the classifier's order.
    history_ : :class:`nica.training.TrainHistory` (``elbo``: mean log-likelihood of the label).
    seed_, device_, n_features_in_, n_steps_, fit_time_ : as named.

    Examples
    --------
    >>> from nica import TCL, make_nonstationary
    >>> data = make_nonstationary(2, n_segments=5, n_per_segment=100, random_state=0)
    >>> model = TCL(2, max_steps=20, random_state=0).fit(data.x, data.u)
    >>> model.transform(data.x).shape
    (500, 2)
    >>> 0.0 <= model.score(data.x, data.u) <= 1.0
    True
    """

    def __init__(
        self,
        n_components: int,
        *,
        hidden_dim: int | str = "auto",
        n_layers: int = 3,
        activation: str = "maxout",
        feature_nonlinearity: str = "abs",
        batch_size: int = 512,
        learning_rate: float = 1e-2,
        max_steps: int = 10_000,
        lr_schedule: str = "cosine",
        n_iter_no_change: int | None = None,
        tol: float = 1e-3,
        ica_max_iter: int = 1000,
        device: str = "auto",
        n_threads: int | None = 1,
        random_state: int | np.random.Generator | None = None,
        verbose: bool = False,
    ) -> None:
        self.n_components = n_components
        self.hidden_dim = hidden_dim
        self.n_layers = n_layers
        self.activation = activation
        self.feature_nonlinearity = feature_nonlinearity
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.max_steps = max_steps
        self.lr_schedule = lr_schedule
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.ica_max_iter = ica_max_iter
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose

    def _hidden_width(self, n: int) -> int:
        if self.hidden_dim == "auto":
            return 2 * n
        return check_positive_int(self.hidden_dim, "hidden_dim")

    @fits_on_threads
    def fit(self, X: Any, u: Any) -> TCL:
        """Train the classifier of u, then FastICA on the learned features.

        Parameters
        ----------
        X : ``(n_samples, n_features)`` observations.
        u : ``(n_samples,)`` segment labels or ``(n_samples, n_segments)`` one-hot rows.

        Returns
        -------
        self
        """
        x = check_observations(X, "X")
        n = check_n_components(self.n_components, x.shape[1])
        if u is None:
            raise ValueError("u is required: TCL learns features by classifying the segment labels u")
        if AuxEncoder("auto").fit(u, len(x)).kind != "categorical":
            raise ValueError("TCL needs segment labels u (integers, strings or one-hot rows), "
                             "got continuous values")
        aux = AuxEncoder("categorical").fit(u, len(x))
        train_config = TrainConfig(
            batch_size=self.batch_size, learning_rate=self.learning_rate,
            max_steps=self.max_steps, lr_schedule=self.lr_schedule,
            n_iter_no_change=self.n_iter_no_change, tol=self.tol,
        )
        train_config.validate()
        n_layers = check_positive_int(self.n_layers, "n_layers")
        hidden = self._hidden_width(n)
        device = resolve_device(self.device)
        seed = draw_seed(self.random_state)

        whitener = PCA(whiten=True).fit(x)
        if np.any(whitener.explained_variance_ <= 1e-10 * whitener.explained_variance_.max()):
            raise ValueError("X is rank deficient (a feature is constant or a linear combination "
                             "of others); drop the redundant features before fitting TCL")
        module = seeded_init(lambda: TCLNetwork(
            x.shape[1], n, aux.dim, hidden_dim=hidden, n_layers=n_layers,
            activation=self.activation, feature_nonlinearity=self.feature_nonlinearity,
        ), seed).to(device)
        x_t = torch.from_numpy(whitener.transform(x)).to(device)
        u_t = torch.from_numpy(aux.transform(u)).to(device)
        generator = torch.Generator(device=device).manual_seed(seed + 1)
        history = train(module, x_t, u_t, train_config, generator=generator, progress=self.verbose)

        features = self._apply(module, lambda m, xb: m.features(xb), x_t)
        ica = LinearICA(n, max_iter=self.ica_max_iter, random_state=seed).fit(features)
        logits = self._apply(module, lambda m, xb: m(xb), x_t)

        self.module_, self.whitener_, self.ica_, self.history_ = module, whitener, ica, history
        self.aux_encoder_ = aux
        self.classes_ = np.asarray(aux.classes)
        self.classification_accuracy_ = float(np.mean(logits.argmax(1) == u_t.argmax(1).cpu().numpy()))
        self.seed_, self.device_ = seed, device
        self.n_features_in_ = x.shape[1]
        self.n_steps_, self.fit_time_ = history.n_steps, history.fit_time
        return self

    def fit_transform(self, X: Any, u: Any) -> np.ndarray:
        """``fit(X, u)`` then ``transform(X)``."""
        return self.fit(X, u).transform(X)

    @staticmethod
    @torch.no_grad()
    def _apply(module: TCLNetwork, fn: Callable, x: torch.Tensor) -> np.ndarray:
        device = next(module.parameters()).device
        out = [fn(module, x[rows].to(device)).cpu() for rows in chunks(len(x), INFERENCE_CHUNK)]
        return torch.cat(out).numpy()

    def _whitened(self, X: Any) -> torch.Tensor:
        check_fitted(self, "module_")
        x = check_new_observations(X, self.n_features_in_)
        return torch.from_numpy(self.whitener_.transform(x))

    def features(self, X: Any) -> np.ndarray:
        """The network's features h(x), after the feature nonlinearity: ``(n_rows, n_components)``."""
        x = self._whitened(X)
        return self._apply(self.module_, lambda m, xb: m.features(xb), x)

    def transform(self, X: Any, u: Any = None) -> np.ndarray:
        """Estimated sources: FastICA of :meth:`features` ``(n_rows, n_components)``; ``u`` is not needed.

        They estimate the sources' sufficient statistics (|s_i| for ``"abs"``), up to
        order, sign and scale.
        """
        features = self.features(X)  # checks the fit first
        return self.ica_.transform(features)

    def predict(self, X: Any) -> np.ndarray:
        """Most likely segment label of each row: ``(n_rows,)``, values from ``classes_``."""
        x = self._whitened(X)
        return self.classes_[self._apply(self.module_, lambda m, xb: m(xb), x).argmax(1)]

    def score(self, X: Any, u: Any) -> float:
        """Segment classification accuracy on (X, u)."""
        pred = self.predict(X)
        index = self.aux_encoder_.transform(u).argmax(1)
        if len(index) != len(pred):
            raise ValueError(f"X has {len(pred)} rows but u has {len(index)}; they must match row for row")
        return float(np.mean(self.classes_[index] == pred))


__all__ = ["FEATURE_NONLINEARITIES", "Maxout", "TCL", "TCLNetwork"]
