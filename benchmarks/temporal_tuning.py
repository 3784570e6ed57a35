"""Settings of the models of the ``temporal`` and ``regimes`` benchmarks (tuning seeds only).

    OMP_NUM_THREADS=1 python benchmarks/temporal_tuning.py --seeds 4001 4002 4003 \
        --method "TemporalIVAE" "TemporalIVAE:transition=mlp" "iVAE (u = domain)"
    OMP_NUM_THREADS=1 python benchmarks/temporal_tuning.py --data regimes --lags 1 --n 3 \
        --method "TemporalIVAE:innovation=gaussian" "iVAE (u = time window)"

Data as ``nica reproduce temporal`` (n = d = 8, 2 lags, 20 domains of 2,000 steps, held-out
series of 500 steps per domain) or ``nica reproduce regimes`` (``--data regimes``: n = d,
4 wells, 20,000 steps, held-out 10,000; no domains, time windows of 100 steps), on data
seeds apart from the reported 3001-...; each method spec is a name of
:data:`nica.experiments._series.SERIES_METHODS`, optionally followed by
``:key=value,...`` settings of its estimator (numbers parsed, ``true`` / ``false`` as
booleans). Test-split MCC of z_t (and, for regimes, the regime accuracy), one fit at a
time on one torch thread; each fit is appended to
``benchmarks/results/temporal_tuning.csv`` (``regimes_tuning.csv``) as soon as it is done.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from nica.datasets.regimes import make_regimes
from nica.datasets.temporal import make_temporal
from nica.experiments._series import TEMPORAL, fit_series_method
from nica.metrics import mean_corr_coef, regime_accuracy

sys.path.insert(0, str(Path(__file__).resolve().parent))
from settings import append_row  # noqa: E402

OUT = {"temporal": Path("benchmarks/results/temporal_tuning.csv"),
       "regimes": Path("benchmarks/results/regimes_tuning.csv")}
FIELDS = {"temporal": ["innovations", "n_sources", "lags", "data_seed", "method", "settings", "mcc", "score",
                       "seconds"],
          "regimes": ["n_sources", "lags", "data_seed", "method", "settings", "mcc", "regime_accuracy", "score",
                      "seconds"]}


def parse_value(text: str) -> object:
    if text in ("true", "false"):
        return text == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_method(spec: str) -> tuple[str, dict]:
    name, _, rest = spec.partition(":")
    settings = dict(item.split("=", 1) for item in rest.split(",") if item)
    return name, {k: parse_value(v) for k, v in settings.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", nargs="+", default=[TEMPORAL])
    parser.add_argument("--seeds", type=int, nargs="+", default=[4001, 4002, 4003])
    parser.add_argument("--innovations", default="nonstationary")
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--lags", type=int, default=2)
    parser.add_argument("--data", choices=["temporal", "regimes"], default="temporal")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    lags = args.lags
    for seed in args.seeds:
        if args.data == "temporal":
            data = make_temporal(args.n, lags=lags, innovations=args.innovations, random_state=seed)
            u, u_test, window = data.u, data.u_test, 500
        else:
            data = make_regimes(args.n, random_state=seed)
            u, u_test, window = None, None, 100
        for spec in args.method:
            name, settings = parse_method(spec)
            kwargs = {"temporal": settings} if name == TEMPORAL else {"ivae": settings}
            fit = fit_series_method(name, args.n, lags, data.x, u, data.x_test, u_test, seed=seed, window=window,
                                    **kwargs)
            row = dict(n_sources=args.n, lags=lags, data_seed=seed, method=name, settings=spec.partition(":")[2],
                       mcc=round(mean_corr_coef(data.s_test[lags:], fit.z_test), 4), score=round(fit.score, 4),
                       seconds=round(fit.seconds, 1))
            if args.data == "temporal":
                row["innovations"] = args.innovations
            else:
                row["regime_accuracy"] = round(regime_accuracy(data.regimes_test[lags:], fit.z_test, len(data.centers),
                                                               random_state=seed), 4)
            append_row(args.out or OUT[args.data], FIELDS[args.data], row)
            print(row, flush=True)


if __name__ == "__main__":
    main()
