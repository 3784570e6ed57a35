"""MCC, time and memory against the number of rows, for data read from disk (issue 22).

    python benchmarks/flow_rows.py --rows 10000 100000 1000000 10000000 --models auto ivae
    python benchmarks/flow_rows.py --report                    # markdown table of the CSV

Data: the paper's generator (:func:`nica.make_nonstationary`), n = d = ``--n`` (10), 40
segments of N / 40 rows, written as memory-mapped ``.npy`` files under ``--dir`` (default
``/tmp/nica-rows``, never the repository) by a child process. Each fit then runs in a
fresh process of its own on one torch thread, on ``nica.datasets.streaming.open_array``
of that file: ``auto`` is what ``nica fit --stream`` runs (:func:`nica.fit_model`), ``ivae``
the streamed iVAE. Per fit: MCC of the chunked ``transform`` against the true sources,
process CPU time and wall time of ``fit`` and of ``transform``, the process's peak
resident memory (``ru_maxrss``: it counts the pages of the mapped file the kernel kept) and
its peak anonymous memory (``RssAnon``, sampled every 5 ms: what the process allocated
itself).
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing as mp
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from performance import AnonPeak, _anon_mb, _peak_mb  # noqa: E402
from settings import append_row  # noqa: E402

OUT = Path("benchmarks/results/flow_rows.csv")
FIELDS = ["N", "n", "segments", "data_seed", "model", "chosen", "steps", "mcc", "fit_cpu_s", "fit_wall_s",
          "transform_wall_s", "peak_rss_mb", "peak_anon_mb", "base_anon_mb", "file_mb"]


def write_data(folder: Path, n: int, n_rows: int, segments: int, seed: int) -> Path:
    """x.npy, u.npy and s.npy of one data set in ``folder`` (skipped when already there)."""
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "s.npy").exists():
        from nica import make_nonstationary

        data = make_nonstationary(n, n, n_segments=segments, n_per_segment=n_rows // segments, random_state=seed)
        np.save(folder / "x.npy", data.x)
        np.save(folder / "u.npy", data.u.astype(np.int32))
        np.save(folder / "s.npy", data.s)
    return folder


def fit_streamed(folder: str, n: int, model: str, model_seed: int) -> dict:
    """One streamed fit and chunked transform in this (fresh) process."""
    import torch

    torch.set_num_threads(1)
    import nica
    from nica.datasets.streaming import open_array

    x = open_array(Path(folder) / "x.npy")
    u = np.load(Path(folder) / "u.npy")
    base = _anon_mb()
    wall, cpu = time.perf_counter(), time.process_time()
    with AnonPeak() as anon:
        fitted = nica.fit_model(x, u, n, model=model, random_state=model_seed)
        fit_wall, fit_cpu = time.perf_counter() - wall, time.process_time() - cpu
        start = time.perf_counter()
        z = fitted.transform(x)
        transform_wall = time.perf_counter() - start
    s = np.load(Path(folder) / "s.npy", mmap_mode="r")
    return dict(model=model, chosen=type(fitted).__name__, steps=fitted.n_steps_,
                mcc=round(nica.mean_corr_coef(np.asarray(s), z), 4), fit_cpu_s=round(fit_cpu, 1),
                fit_wall_s=round(fit_wall, 1), transform_wall_s=round(transform_wall, 1),
                peak_rss_mb=round(_peak_mb(), 1), peak_anon_mb=round(anon.peak, 1), base_anon_mb=round(base, 1),
                file_mb=round((Path(folder) / "x.npy").stat().st_size / 2**20, 1))


def _child(func, kwargs: dict, queue) -> None:
    queue.put(func(**kwargs))


def in_child(func, **kwargs):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(func, kwargs, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def report(path: Path) -> str:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    header = ["N", "model", "MCC", "fit CPU s", "fit wall s", "transform wall s", "peak RSS MB", "peak anon MB",
              "file MB"]
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        out.append("| " + " | ".join([f"{int(r['N']):,}", f"{r['model']} ({r['chosen']})", r["mcc"], r["fit_cpu_s"],
                                      r["fit_wall_s"], r["transform_wall_s"], r["peak_rss_mb"], r["peak_anon_mb"],
                                      r["file_mb"]]) + " |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", nargs="+", type=int, default=[10_000, 100_000, 1_000_000, 10_000_000])
    parser.add_argument("--n", type=int, default=10)
    parser.add_argument("--segments", type=int, default=40)
    parser.add_argument("--data-seed", type=int, default=9101)
    parser.add_argument("--model-seed", type=int, default=0)
    parser.add_argument("--models", nargs="+", default=["auto", "ivae"])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/nica-rows"))
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--report", action="store_true", help="print the CSV as a markdown table and exit")
    args = parser.parse_args()
    if args.report:
        print(report(args.out))
        return
    for n_rows in args.rows:
        folder = args.dir / f"n{args.n}-N{n_rows}-seed{args.data_seed}"
        in_child(write_data, folder=folder, n=args.n, n_rows=n_rows, segments=args.segments, seed=args.data_seed)
        for model in args.models:
            row = in_child(fit_streamed, folder=str(folder), n=args.n, model=model, model_seed=args.model_seed)
            row = dict(N=n_rows, n=args.n, segments=args.segments, data_seed=args.data_seed, **row)
            append_row(args.out, FIELDS, row)
            print(row, flush=True)


if __name__ == "__main__":
    main()
