"""Shared tiny problems: every test here must stay fast on one CPU thread."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from hypothesis import settings

import nica

torch.set_num_threads(1)

# property tests are derandomised so CI runs are repeatable; HYPOTHESIS_PROFILE=explore
# searches new examples on every run
settings.register_profile("repeatable", derandomize=True, deadline=None)
settings.register_profile("explore", deadline=None, max_examples=500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

#: a small, fast network and training budget used throughout the estimator tests
FAST = dict(hidden_dim=16, n_layers=2, batch_size=100, max_steps=30, device="cpu")


@pytest.fixture(scope="session")
def tiny_data() -> nica.NonstationaryData:
    """3 sources -> 3 observations, 10 segments x 50 points (n k + 1 = 7 <= 10 labels)."""
    return nica.make_nonstationary(3, n_segments=10, n_per_segment=50, random_state=0)


@pytest.fixture(scope="session")
def fast_params() -> dict:
    return dict(FAST)


@pytest.fixture(scope="session")
def fitted_ivae(tiny_data) -> nica.IVAE:
    """An iVAE trained long enough to reconstruct; tests must not modify it."""
    return nica.IVAE(3, **{**FAST, "max_steps": 200}, random_state=0).fit(tiny_data.x, tiny_data.u)


@pytest.fixture(scope="session")
def fitted_vae(tiny_data) -> nica.VAE:
    return nica.VAE(3, **FAST, random_state=0).fit(tiny_data.x)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)
