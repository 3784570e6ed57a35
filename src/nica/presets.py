"""Named configurations of the estimator.

``"authors"`` reproduces the training setting of the authors' public code (REFERENCE §5):
the beta-TCVAE-style reweighted objective (reconstruction 100, MI 1, TC 0, dimension-wise
KL 10), a zero-mean prior modulated in its variance only, a fixed decoder variance of 0.1,
3-layer MLPs of width 100 with xtanh, Adam 1e-2 with ReduceLROnPlateau, batch 64 and
12,500 steps (20 epochs of 40,000 points), on raw (unstandardised) X.

``"paper-elbo"`` is the paper's model trained on its stated objective, the plain ELBO.
``"default"`` is the estimator's own defaults (see docs/tuning.md for the measurements).
"""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "authors": {
        "prior": "gaussian",
        "prior_mean": False,
        "prior_scale": True,
        "prior_net": "mlp",
        "shared_encoder": False,
        "decoder_var": 0.1,
        "hidden_dim": 100,
        "n_layers": 3,
        "activation": "xtanh",
        "objective": "reweighted",
        "objective_weights": (100.0, 1.0, 0.0, 10.0),
        "batch_size": 64,
        "learning_rate": 1e-2,
        "max_steps": 12_500,
        "lr_schedule": "plateau",
        "standardize": False,
    },
    "paper-elbo": {
        "prior_mean": False,
        "decoder_var": 0.1,
        "hidden_dim": 100,
        "objective": "elbo",
        "batch_size": 64,
        "max_steps": 12_500,
        "lr_schedule": "plateau",
        "standardize": False,
    },
}
