"""Run chosen fits of the ``switching`` and ``energy-landscape`` experiments one at a time
and append each row to ``benchmarks/results/NAME.csv`` as soon as it is done (so that a
partial run keeps what it measured). Each fit is single-threaded; ``seconds`` is its
process CPU time.

    python benchmarks/regimes_queue.py switching:SwitchingTemporalFlow (regimes hidden):3001:3001 ...

Each argument is EXPERIMENT:METHOD:DATA_SEED:MODEL_SEED (the full configuration).
"""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path

from nica._threads import fits_on_threads  # noqa: F401  (fits run on one thread by default)
from nica.experiments import EXPERIMENTS, FIELDS, Task

RESULTS = Path(__file__).parent / "results"


def main(specs: list[str]) -> None:
    for spec in specs:
        name, rest = spec.split(":", 1)
        method, data_seed, model_seed = rest.rsplit(":", 2)
        experiment = EXPERIMENTS[name]
        config = experiment.config("full")
        task = Task(name, "full", method, experiment.setting, "CtrlNS" if name == "switching" else "MOSAIC",
                    int(data_seed), int(model_seed))
        wall = time.perf_counter()
        try:
            rows = experiment.run(task, config)
        except Exception as exc:  # keep the queue going; the error is the row
            rows = [task.row(mcc=float("nan"), error=f"{type(exc).__name__}: {exc}")]
        path = RESULTS / f"{name.replace('-', '_')}_full.csv"
        new = not path.exists()
        with open(path, "a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=FIELDS)
            if new:
                writer.writeheader()
            writer.writerows(rows)
        for r in rows:
            print(f"{spec}: mcc {r['mcc']:.3f} score {r['score']} cpu {r['seconds']} wall "
                  f"{time.perf_counter() - wall:.0f}s {r['error']}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
