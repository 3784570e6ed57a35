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

from pathlib import Path
from typing import Any

import numpy as np
import torch

from nica._validation import AuxEncoder
from nica.base.estimator import Estimator, FitData, FitInputs, FitPlan
from nica.base.params import check_new_observations, check_positive_int
from nica.base.registry import register_estimator
from nica.base.restarts import RestartChoice, check_restarts
from nica.baselines.linear import PCA, LinearICA
from nica.models.base import RestartStack
from nica.tcl._format import TCL_FORMAT
from nica.tcl.network import FEATURE_NONLINEARITIES, Maxout, TCLNetwork
from nica.training.trainer import TrainConfig


@register_estimator("TCL", TCL_FORMAT, model="tcl", unmixing=True)
class TCL(Estimator):
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
    n_restarts : K networks trained side by side on the same batches; one is kept by
        ``selection`` (``"score"``: the highest training log-likelihood of the labels, also
        called ``"likelihood"``; ``"agreement"``; ``"first"``).
    selection : as above.
    checkpoint_dir, checkpoint_every : write the training state to
        ``checkpoint_dir/checkpoint.pt`` every ``checkpoint_every`` steps, so that
        ``fit(X, u, resume=True)`` continues an interrupted fit to the same result.
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
    score_ : ``classification_accuracy_`` (what :meth:`score` measures: :attr:`score_name`).
    history_ : :class:`nica.training.TrainHistory` (``score``: mean log-likelihood of the label).
    selected_restart_, restart_scores_, restart_agreement_, restarts_module_ : as
        :class:`nica.IVAE`.
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

    score_name = "accuracy"
    progress_label = "log-lik."
    u_required = "u is required: TCL learns features by classifying the segment labels u"

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
        n_restarts: int = 1,
        selection: str = "score",
        checkpoint_dir: str | Path | None = None,
        checkpoint_every: int = 1_000,
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
        self.n_restarts = n_restarts
        self.selection = selection
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose

    def _hidden_width(self, n: int) -> int:
        if self.hidden_dim == "auto":
            return 2 * n
        return check_positive_int(self.hidden_dim, "hidden_dim")

    def fit(self, X: Any, u: Any, *, resume: bool = False) -> TCL:
        """Train the classifier of u, then FastICA on the learned features.

        Parameters
        ----------
        X : ``(n_samples, n_features)`` observations.
        u : ``(n_samples,)`` segment labels or ``(n_samples, n_segments)`` one-hot rows.
        resume : continue from the checkpoint in ``checkpoint_dir`` (if there is one).

        Returns
        -------
        self
        """
        return super().fit(X, u, resume=resume)

    # ----------------------------------------------------------------- fitting: the skeleton's hooks
    def _encode_u(self, u: Any, n_samples: int) -> AuxEncoder:
        if u is None:
            raise ValueError(self.u_required)
        if AuxEncoder("auto").fit(u, n_samples).kind != "categorical":
            raise ValueError("TCL needs segment labels u (integers, strings or one-hot rows), "
                             "got continuous values")
        return AuxEncoder("categorical").fit(u, n_samples)

    def _fit_plan(self, inputs: FitInputs) -> FitPlan:
        n, d, aux = int(self.n_components), inputs.n_features, inputs.aux
        train_config = TrainConfig(
            batch_size=self.batch_size, learning_rate=self.learning_rate,
            max_steps=self.max_steps, lr_schedule=self.lr_schedule,
            n_iter_no_change=self.n_iter_no_change, tol=self.tol,
        )
        train_config.validate()
        n_layers = check_positive_int(self.n_layers, "n_layers")
        hidden = self._hidden_width(n)
        n_restarts = check_restarts(self.n_restarts, self.selection)

        def network() -> TCLNetwork:
            return TCLNetwork(d, n, aux.dim, hidden_dim=hidden, n_layers=n_layers, activation=self.activation,
                              feature_nonlinearity=self.feature_nonlinearity)

        if n_restarts == 1:
            return FitPlan(network, train_config)
        return FitPlan(lambda: RestartStack([network() for _ in range(n_restarts)]), train_config)

    def _fit_data(self, inputs: FitInputs, plan: FitPlan, device: torch.device) -> FitData:
        """PCA-whitened X and one-hot u on ``device``."""
        x = inputs.x
        whitener = PCA(whiten=True).fit(x)
        if np.any(whitener.explained_variance_ <= 1e-10 * whitener.explained_variance_.max()):
            raise ValueError("X is rank deficient (a feature is constant or a linear combination "
                             "of others); drop the redundant features before fitting TCL")
        x_w, u_enc = whitener.transform(x), inputs.aux.transform(inputs.u)
        return FitData(torch.from_numpy(x_w).to(device), torch.from_numpy(u_enc).to(device), (x_w, u_enc),
                       state={"whitener": whitener})

    def _set_outputs(self, inputs: FitInputs, data: FitData, choice: RestartChoice) -> None:
        """FastICA on the kept network's features, and its training accuracy."""
        features = self._batched(self.module_.features, data.x).numpy()
        ica = LinearICA(int(self.n_components), max_iter=self.ica_max_iter, random_state=self.seed_).fit(features)
        logits = self._batched(self.module_, data.x).numpy()
        self.whitener_, self.ica_ = data.state["whitener"], ica
        self.classes_ = np.asarray(inputs.aux.classes)
        self.classification_accuracy_ = float(np.mean(logits.argmax(1) == data.u.argmax(1).cpu().numpy()))
        self.restart_score_ = choice.fit_scores
        self.score_ = self.classification_accuracy_

    def describe_score(self) -> str:
        self._check_fitted()
        return f"segment classification accuracy {self.score_:.3f} on the training data"

    # ----------------------------------------------------------------- inference
    def _whitened(self, X: Any) -> torch.Tensor:
        self._check_fitted()
        x = check_new_observations(X, self.n_features_in_, "X", getattr(self, "feature_names_in_", None))
        return torch.from_numpy(self.whitener_.transform(x))

    def features(self, X: Any) -> np.ndarray:
        """The network's features h(x), after the feature nonlinearity: ``(n_rows, n_components)``."""
        x = self._whitened(X)  # checks the fit first
        return self._batched(self.module_.features, x).numpy()

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
        return self.classes_[self._batched(self.module_, x).numpy().argmax(1)]

    def score(self, X: Any, u: Any) -> float:
        """Segment classification accuracy on (X, u)."""
        pred = self.predict(X)
        index = self.aux_encoder_.transform(u).argmax(1)
        if len(index) != len(pred):
            raise ValueError(f"X has {len(pred)} rows but u has {len(index)}; they must match row for row")
        return float(np.mean(self.classes_[index] == pred))


__all__ = ["FEATURE_NONLINEARITIES", "Maxout", "TCL", "TCLNetwork"]
