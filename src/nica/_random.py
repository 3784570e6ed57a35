"""Explicit randomness: every public entry takes ``random_state`` and resolves it here."""

from __future__ import annotations

import numpy as np

MAX_SEED = 2**31 - 1


def as_generator(random_state: int | np.random.Generator | None) -> np.random.Generator:
    """A ``numpy.random.Generator`` from a seed, a generator (returned as is) or ``None``."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None or isinstance(random_state, (int, np.integer)):
        return np.random.default_rng(random_state)
    raise TypeError(
        f"random_state must be an int, a numpy Generator or None, got {type(random_state).__name__}"
    )


def draw_seed(random_state: int | np.random.Generator | None) -> int:
    """One integer seed for torch, drawn once from ``random_state``."""
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        return int(random_state)
    return int(as_generator(random_state).integers(0, MAX_SEED))
