"""``nica.consistency``: do fits with different seeds give the same latents, and more so than
a reference without identifiability?

On real data no one knows the sources; an identifiable model shows itself by
consistency: fits with different seeds agree up to permutation and element-wise
transforms. Seeds alone can agree for reasons that have nothing to do with
identifiability, so two things make the check honest (docs/real-data.md, "Is my model
consistent?"):

- **each seed's fit sees the data in a basis of its own** (``rotate``, on for the flow):
  X is whitened on its top ``n_components`` principal directions, then rotated by a
  random orthogonal matrix drawn for that fit. The flow's restarts start near the
  identity, so without this its seeds agree even on data where nothing is identifiable
  (MCC 0.79 on stationary Gaussian sources); with it, agreement can come only from
  structure the model finds in the data, whatever basis it is shown in.
- **references without identifiability**, measured the same way: the same model with u
  permuted across the rows (``"shuffled-u"``: what is left when u carries no
  information) and the plain VAE (``"vae"``: a prior independent of u).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nica._random import draw_seed
from nica._threads import usable_cpus
from nica._validation import check_observations, check_same_length
from nica.datasets.tabular import split_aux, to_aux
from nica.metrics.agreement import align_to, chance_agreement, seed_agreement
from nica.model_choice import MODELS, choose_model, make_model
from nica.replication._fits import FitData, FitJob, Whitening, random_rotation, run_jobs
from nica.replication._result import ConsistencyResult

#: reference name -> what it is (the estimators of a reference's fits, see :func:`_reference_jobs`)
REFERENCES: dict[str, str] = {
    "vae": "nica.VAE: prior independent of u, its own defaults",
    "shuffled-u": "the same model with u permuted across the rows (a new permutation for every seed)",
}
#: the first is the one ``reference_mcc`` reports (docs/real-data.md: why the VAE)
DEFAULT_REFERENCES = ("vae", "shuffled-u")
#: a component whose agreement across seeds is below this is named as not replicating
DEFAULT_THRESHOLD = 0.9
MIN_EVAL_ROWS = 10


def consistency(
    X: Any,
    u: Any,
    n_components: int,
    seeds: int | Sequence[int] = 5,
    model: str = "auto",
    *,
    reference: str | Sequence[str] | None = DEFAULT_REFERENCES,
    holdout: float = 0.0,
    rotate: bool | str = "auto",
    threshold: float = DEFAULT_THRESHOLD,
    n_jobs: int | None = None,
    random_state: int | np.random.Generator | None = 0,
    reference_params: dict[str, Any] | None = None,
    X_eval: Any = None,
    u_eval: Any = None,
    echo: Callable[[str], None] | None = None,
    **params: Any,
) -> ConsistencyResult:
    """Fit ``model`` with several seeds and measure how far their latents agree, beside
    references without identifiability (module docstring).

    Parameters
    ----------
    X : ``(n_samples, n_features)`` observations (array, DataFrame or AnnData).
    u : ``(n_samples,)`` labels or ``(n_samples, m)`` covariates, or a column name of X.
    n_components : latent dimension n.
    seeds : the number of fits K >= 2 (seeds 0..K-1), or the seeds themselves.
    model : ``"auto"`` (what :func:`nica.fit_model` and ``nica fit`` choose) or a name in
        :data:`nica.MODELS`.
    reference : names in :data:`REFERENCES` (default both; the first is ``reference_mcc``),
        or None for none.
    holdout : fraction of the rows held out of every fit; agreement is then measured on
        those rows only (their latents from ``transform``). 0: fit and measure on all rows.
    rotate : whiten X and show each fit its own random rotation of it (``"auto"``: for
        models that start near the identity, the flow; never for binary X).
    threshold : components whose agreement across seeds is below it are named as not
        replicating.
    n_jobs : fits run at once, each on its own process with one torch thread (default:
        the usable CPU cores). The results do not depend on it.
    random_state : seeds the rows held out, the rotations and the permutations of u.
    reference_params : keyword arguments of the VAE reference's estimator.
    X_eval, u_eval : new rows to measure agreement on (e.g. held-out recordings), instead
        of ``holdout``: every fit then uses all of X. ``u_eval`` is needed only by a
        model whose encoder reads u.
    echo : called with one progress line per finished fit.
    params : keyword arguments of the model's estimator (``max_steps``, ...); the
        shuffled-u reference gets them too.

    Returns
    -------
    :class:`ConsistencyResult`: ``mcc``, ``weak_mcc``, ``per_component``,
    ``reference_mcc``, ``not_replicating()``, ``summary()``, ``to_dict()``, ``save(dir)``.

    Examples
    --------
    >>> import nica
    >>> data = nica.make_nonstationary(2, n_segments=6, n_per_segment=100, random_state=0)
    >>> result = nica.consistency(data.x, data.u, 2, seeds=2, reference="shuffled-u", n_jobs=1,
    ...                           max_steps=30)
    >>> result.model, len(result.per_component), sorted(result.references)
    ('IFlow', 2, ['shuffled-u'])
    """
    X, u = split_aux(X, u)
    x = check_observations(X, "X")
    if u is None:
        raise ValueError("u is required: consistency is measured for a model of p(x | u)")
    u = np.asarray(to_aux(u))
    check_same_length(x, u, "X", "u")
    seed_list = _check_seeds(seeds)
    references = _check_references(reference)
    holdout = _check_fraction(holdout, len(x), n_components)
    x_new, u_new = _check_eval_rows(X_eval, u_eval, x, holdout)
    threshold = _check_threshold(threshold)
    n_jobs = _check_jobs(n_jobs)

    if model == "auto":
        choice = choose_model(x, n_components)
        name, reason, params = choice.name, choice.reason, {**choice.params, **params}
    elif model in MODELS:
        name, reason = model, ""
    else:
        raise ValueError(f"unknown model {model!r}; choose 'auto' or one of {sorted(MODELS)}")
    probe = make_model(name, n_components, **params)  # refuses unknown parameters before any fit
    binary = bool(np.isin(x, (0.0, 1.0)).all())
    rotated = _resolve_rotate(rotate, probe, binary)
    if "vae" in references:
        from nica.estimator import VAE

        VAE(n_components, **(reference_params or {}))  # the same check for the reference's parameters

    rng = np.random.default_rng(draw_seed(random_state))
    fit_rows, eval_rows = _split_rows(len(x), holdout, rng)
    base = int(rng.integers(0, 2**31 - 1))
    if x_new is None:
        x_new, u_new = x[eval_rows], u[eval_rows]
    else:
        eval_rows = None  # new rows: not rows of X
    data = FitData(x_fit=x[fit_rows], u_fit=u[fit_rows], x_eval=x_new, u_eval=u_new,
                   whitening=Whitening.fit(x[fit_rows], n_components) if rotated else None)

    def fit_rng(group: int, seed: int) -> np.random.Generator:
        return np.random.default_rng((base, group, seed))

    jobs = []
    for g, group in enumerate(("model", *references)):
        for seed in seed_list:
            g_rng = fit_rng(g, seed)
            rotation = random_rotation(n_components, g_rng) if rotated else None
            if group == "vae":
                jobs.append(FitJob(group, "vae", n_components, seed, dict(reference_params or {}), rotation))
            else:
                permutation = g_rng.permutation(len(fit_rows)) if group == "shuffled-u" else None
                jobs.append(FitJob(group, name, n_components, seed, params, rotation, permutation))
    outcomes = run_jobs(jobs, data, min(n_jobs, len(jobs)), echo=echo)

    groups: dict[str, list] = {}
    for job, outcome in zip(jobs, outcomes):
        groups.setdefault(job.group, []).append(outcome)
    agreements = {group: seed_agreement([o.latents for o in outs]) for group, outs in groups.items()}
    anchor = groups["model"][agreements["model"].anchor].latents
    return ConsistencyResult(
        model=type(probe).__name__, model_name=name, reason=reason, seeds=seed_list, n_components=n_components,
        agreement=agreements.pop("model"), references=agreements, rotated=rotated, holdout=holdout,
        n_fit_rows=len(fit_rows), n_eval_rows=len(x_new), threshold=threshold, new_rows=eval_rows is None,
        cpu_seconds={g: [o.cpu_seconds for o in outs] for g, outs in groups.items()},
        wall_seconds={g: [o.wall_seconds for o in outs] for g, outs in groups.items()},
        latents=np.stack([align_to(anchor, o.latents) for o in groups["model"]]), rows=eval_rows,
        chance_mcc=chance_agreement(n_components),
    )


# ---------------------------------------------------------------- checks
def _check_seeds(seeds: int | Sequence[int]) -> list[int]:
    if isinstance(seeds, numbers.Integral) and not isinstance(seeds, bool):
        if seeds < 2:
            raise ValueError(f"seeds must be at least 2 (agreement is between fits), got {seeds}")
        return list(range(int(seeds)))
    try:
        values = list(seeds)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"seeds must be a number of fits or a list of seeds, got {seeds!r}") from None
    if not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s >= 0 for s in values):
        raise ValueError(f"seeds must be non-negative integers, got {values}")
    if len(values) < 2 or len(set(values)) != len(values):
        raise ValueError(f"seeds must be at least 2 distinct integers, got {values}")
    return [int(s) for s in values]


def _check_references(reference: str | Sequence[str] | None) -> tuple[str, ...]:
    names = () if reference is None else (reference,) if isinstance(reference, str) else tuple(reference)
    unknown = [r for r in names if r not in REFERENCES]
    if unknown:
        raise ValueError(f"unknown reference(s) {unknown}; choose from {sorted(REFERENCES)}")
    if len(set(names)) != len(names):
        raise ValueError(f"a reference is named twice: {list(names)}")
    return names


def _check_fraction(holdout: float, n_rows: int, n_components: int) -> float:
    if not isinstance(holdout, numbers.Real) or isinstance(holdout, bool) or not 0.0 <= holdout < 1.0:
        raise ValueError(f"holdout must be a fraction in [0, 1), got {holdout!r}")
    held = round(holdout * n_rows)
    if holdout > 0 and (held < max(MIN_EVAL_ROWS, n_components + 1) or n_rows - held < 2):
        raise ValueError(f"holdout={holdout} of {n_rows} rows holds out {held}: too few to measure agreement on "
                         f"(at least {max(MIN_EVAL_ROWS, n_components + 1)}) or too many to fit on")
    return float(holdout)


def _check_eval_rows(X_eval: Any, u_eval: Any, x: np.ndarray, holdout: float) -> tuple[Any, Any]:
    """``X_eval`` (and ``u_eval``) checked against X, or (None, None) when not given."""
    if X_eval is None:
        if u_eval is not None:
            raise ValueError("u_eval was given without X_eval")
        return None, None
    if holdout:
        raise ValueError("pass either holdout (rows of X held out) or X_eval (new rows), not both")
    x_new = check_observations(X_eval, "X_eval", min_samples=MIN_EVAL_ROWS)
    if x_new.shape[1] != x.shape[1]:
        raise ValueError(f"X_eval has {x_new.shape[1]} features, X has {x.shape[1]}")
    if u_eval is not None:
        u_eval = np.asarray(to_aux(u_eval))
        check_same_length(x_new, u_eval, "X_eval", "u_eval")
    return x_new, u_eval


def _check_threshold(threshold: float) -> float:
    if not isinstance(threshold, numbers.Real) or isinstance(threshold, bool) or not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold!r}")
    return float(threshold)


def _check_jobs(n_jobs: int | None) -> int:
    if n_jobs is None:
        return usable_cpus()
    if not isinstance(n_jobs, numbers.Integral) or isinstance(n_jobs, bool) or n_jobs < 1:
        raise ValueError(f"n_jobs must be a positive integer or None, got {n_jobs!r}")
    return int(n_jobs)


def _resolve_rotate(rotate: bool | str, probe: Any, binary: bool) -> bool:
    """Whether each fit sees its own rotation of the whitened X (module docstring)."""
    from nica.flows import IFlow

    if isinstance(rotate, str) and rotate == "auto":
        return isinstance(probe, IFlow) and not binary
    if not isinstance(rotate, bool):
        raise ValueError(f"rotate must be True, False or 'auto', got {rotate!r}")
    if rotate and binary:
        raise ValueError("X is binary: a rotation would make it real-valued, which its model (a Bernoulli "
                         "decoder) cannot read; pass rotate=False (CLI: --no-rotate)")
    return rotate


def _split_rows(n_rows: int, holdout: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Fit rows and evaluation rows (both all rows when ``holdout`` is 0), each in order."""
    if holdout == 0:
        rows = np.arange(n_rows)
        return rows, rows
    order = rng.permutation(n_rows)
    held = round(holdout * n_rows)
    return np.sort(order[held:]), np.sort(order[:held])


__all__ = ["DEFAULT_REFERENCES", "DEFAULT_THRESHOLD", "REFERENCES", "consistency"]
