"""Shared tiny problems: every test here must stay fast on one CPU thread."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from hypothesis import settings

import nica

#: torch threads for the tests; `make test` runs the numerics-marked tests again with 2
#: (NICA_TEST_THREADS), and then fits that ask for one thread take that many too, so that a
#: result which holds for one thread count only fails (docs/reproducibility.md)
TEST_THREADS = int(os.environ.get("NICA_TEST_THREADS", "1"))
torch.set_num_threads(TEST_THREADS)
if TEST_THREADS != 1:
    import nica._threads

    _torch_threads = nica._threads.torch_threads
    nica._threads.torch_threads = lambda n: _torch_threads(None if n is None else TEST_THREADS)

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


def _linear_gaussian_data(n: int, d: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray, float]:
    """x = A s + noise with s ~ N(0, diag(v_u)) per segment: x, u and the exact mean log p(x | u)."""
    rng = np.random.default_rng(seed)
    n_seg, per = 8, 500
    var = rng.uniform(0.3, 3.0, (n_seg, n))
    u = np.repeat(np.arange(n_seg), per)
    s = rng.standard_normal((n_seg * per, n)) * np.sqrt(var[u])
    a = np.linalg.qr(rng.standard_normal((d, d)))[0][:, :n] * rng.uniform(0.5, 2.0, n)  # (d, n)
    x = s @ a.T + noise * rng.standard_normal((len(s), d))
    covs = a[None] * var[:, None, :] @ a.T[None] + noise ** 2 * np.eye(d)  # (segments, d, d)
    sign, logdet = np.linalg.slogdet(covs)
    quad = np.einsum("ij,ijk,ik->i", x, np.linalg.inv(covs)[u], x)
    exact = -0.5 * (d * np.log(2 * np.pi) + logdet[u] + quad)
    return x.astype(np.float32), u, float(exact.mean())


@pytest.fixture
def linear_gaussian():
    """``linear_gaussian(n, d, noise, seed)``: linear Gaussian data with an exact mean
    log p(x | u) (:func:`_linear_gaussian_data`)."""
    return _linear_gaussian_data

# the contract suite's toy estimator is imported (and so registered) by tests/test_contract.py
# alone: collected for doctests as well, it would register a second time under another name
collect_ignore = ["contract_toy.py"]
