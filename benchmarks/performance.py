"""Speed and scale benchmarks; results as CSV rows and markdown tables for docs/performance.md.

    python benchmarks/performance.py budget      # MCC and wall time against the step budget
    python benchmarks/performance.py authors     # our default vs the authors' setting, same process
    python benchmarks/performance.py throughput  # samples/s and peak memory against N and n
    python benchmarks/performance.py restarts    # K restarts batched vs K sequential fits
    python benchmarks/performance.py startup     # import and first-fit costs of a fresh process
    python benchmarks/performance.py compile     # default fit eager vs torch.compile (one data seed)
    python benchmarks/performance.py gradients   # hand-derived vs autograd gradients, same process
    python benchmarks/performance.py restart-fits  # a whole default fit vs one with 16 restarts
    python benchmarks/performance.py all

Every measurement runs in its own child process (so peak memory is that process's own)
on ``--threads`` torch threads; rows are appended to ``benchmarks/results/performance.csv``
and ``--report`` prints the tables of the rows already there.
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing as mp
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from settings import SETTINGS  # noqa: E402

OUT = Path("benchmarks/results/performance.csv")
FIELDS = ["benchmark", "config", "data_seed", "n", "d", "N", "K", "steps", "source", "mcc",
          "seconds", "samples_per_s", "ms_per_step", "peak_mb", "threads", "peak_anon_mb", "fit_anon_mb"]
BUDGET_SEEDS = (2001, 2002, 2003, 2004, 2005)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _anon_mb() -> float:
    """Resident anonymous memory (Linux ``RssAnon``): what the process itself allocated,
    without the pages of a memory-mapped file, which the kernel may drop at any time."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class AnonPeak:
    """Highest ``RssAnon`` seen while the ``with`` block runs (sampled every 5 ms)."""

    def __enter__(self) -> "AnonPeak":
        self.peak = _anon_mb()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._done.wait(0.005):
            self.peak = max(self.peak, _anon_mb())

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, _anon_mb())


def _child(func, kwargs: dict, queue) -> None:
    import torch

    torch.set_num_threads(kwargs.pop("threads"))
    queue.put(func(**kwargs))


def in_child(func, **kwargs) -> dict | list[dict]:
    """Run ``func(**kwargs)`` in a fresh process; its row (or rows) gain the thread count."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(func, dict(kwargs), queue))
    proc.start()
    result = queue.get()
    proc.join()
    if isinstance(result, list):
        return [{**row, "threads": kwargs["threads"]} for row in result]
    return {**result, "threads": kwargs["threads"]}


# ---------------------------------------------------------------- measurements (child side)
def fit_once(config: str, data_seed: int, steps: int, k: int = 1, setting: str = "5-5") -> dict:
    """One fit of a preset on a benchmark setting: MCC and wall time (incl. selection)."""
    from nica import IVAE, make_nonstationary, mean_corr_coef

    data = make_nonstationary(**SETTINGS[setting], random_state=data_seed)
    n = data.s.shape[1]
    overrides = {"max_steps": steps} if steps else {}
    model = IVAE.from_preset(config, n, n_restarts=k, random_state=0, **overrides)
    start = time.perf_counter()
    model.fit(data.x, data.u)
    seconds = time.perf_counter() - start
    mcc = mean_corr_coef(data.s, model.transform(data.x, data.u))
    return dict(config=config, data_seed=data_seed, n=n, d=data.x.shape[1], N=len(data.x), K=k,
                steps=model.n_steps_, mcc=round(mcc, 4), seconds=round(seconds, 2), peak_mb=round(_peak_mb(), 1))


def fit_variants(data_seed: int, steps: int, variants: dict[str, dict]) -> list[dict]:
    """In one process, one after the other: the default fit with each variant's estimator
    overrides (e.g. ``{"compile": True}``), same data and seed; one row per variant."""
    from nica import IVAE, make_nonstationary, mean_corr_coef

    data = make_nonstationary(**SETTINGS["5-5"], random_state=data_seed)
    rows = []
    for name, overrides in variants.items():
        model = IVAE(5, max_steps=steps, random_state=0, **overrides)
        start = time.perf_counter()
        model.fit(data.x, data.u)
        seconds = time.perf_counter() - start
        mcc = mean_corr_coef(data.s, model.transform(data.x, data.u))
        rows.append(dict(config=name, data_seed=data_seed, n=5, d=5,
                         N=len(data.x), K=overrides.get("n_restarts", 1), steps=steps, mcc=round(mcc, 4),
                         seconds=round(seconds, 2)))
    return rows


#: variants of the default fit compared in one process, per benchmark
VARIANTS = {
    "compile": {"default": {}, "compile": {"compile": True}},
    "gradients": {"analytic": {}, "autograd": {"analytic_gradients": False}},
    "restart-fits": {"one fit": {}, "16 restarts": {"n_restarts": 16}},
}


def authors_then_default(data_seed: int, budgets) -> list[dict]:
    """In one process: the authors' setting (batch 64, 12,500 Adam steps), then our
    default at each step budget, on the same data; one row per fit."""
    rows = [fit_once("authors", data_seed, steps=0)]
    rows += [fit_once("default", data_seed, steps=b) for b in budgets]
    return rows


STARTUP_SCRIPT = """
import json, time
start = time.perf_counter()
import nica
imported = time.perf_counter()
data = nica.make_nonstationary(n_sources=5, n_obs=5, n_segments=40, n_per_segment=1000, random_state=0)
times = []
for _ in range(2):
    begin = time.perf_counter()
    nica.IVAE(5, max_steps=10, random_state=0).fit(data.x, data.u)
    times.append(time.perf_counter() - begin)
print(json.dumps([imported - start] + times))
"""


def startup() -> dict:
    """Fixed costs of a fresh interpreter: ``import nica``, then two 10-step fits (the
    first pays every lazy import and first-call cost)."""
    import subprocess

    out = subprocess.run([sys.executable, "-c", STARTUP_SCRIPT], capture_output=True, text=True, check=True)
    imported, first, second = json.loads(out.stdout.strip().splitlines()[-1])
    return dict(config="default", steps=10, seconds=round(first, 3),
                mcc=f"import nica {imported:.2f} s; first fit {first:.2f} s; second fit {second:.2f} s")


def step_rate(n: int, n_rows: int, steps: int, source: str, k: int = 1) -> dict:
    """Training throughput on random data of N rows (in memory or memory-mapped .npy)."""
    from nica import IVAE

    rng = np.random.default_rng(0)
    u = rng.integers(0, 40, n_rows)
    with tempfile.TemporaryDirectory() as tmp:
        if source == "memmap":  # written in chunks so that this process never holds X
            path = Path(tmp) / "x.npy"
            x_disk = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n_rows, n))
            for start in range(0, n_rows, 100_000):
                x_disk[start:start + 100_000] = rng.normal(size=(min(100_000, n_rows - start), n))
            x_disk.flush()
            del x_disk
            x = np.load(path, mmap_mode="r")
        else:
            x = rng.normal(size=(n_rows, n)).astype(np.float32)
        base = _peak_mb()
        warm = IVAE(n, max_steps=20, n_restarts=k, random_state=0).fit(x[:2000], u[:2000])  # noqa: F841
        model = IVAE(n, max_steps=steps, n_restarts=k, random_state=0)
        before = _anon_mb()
        start = time.perf_counter()
        with AnonPeak() as anon:
            model.fit(x, u)
        seconds = time.perf_counter() - start
    return dict(config="default", n=n, d=n, N=n_rows, K=k, steps=steps, source=source,
                seconds=round(seconds, 2), ms_per_step=round(1000 * model.fit_time_ / steps, 3),
                samples_per_s=round(steps * model.batch_size / model.fit_time_),
                peak_mb=round(_peak_mb(), 1), mcc=f"base {base:.0f} MB", peak_anon_mb=round(anon.peak, 1),
                fit_anon_mb=round(anon.peak - before, 1))


# ---------------------------------------------------------------- benchmarks (parent side)
def bench_budget(threads: int, seeds, budgets=(1000, 2000, 3000, 5000, 10000), restarts=(1,)):
    """Rows as each fit finishes (a generator, so a long run shows progress)."""
    for s in seeds:
        for k in restarts:
            for b in budgets:
                yield {"benchmark": "budget", **in_child(fit_once, config="default", data_seed=s, steps=b, k=k,
                                                         threads=threads)}


def bench_authors(threads: int, seeds, budgets=(250, 500, 1000, 2000, 5000)):
    """Rows per data seed as each seed's process finishes."""
    for s in seeds:
        for row in in_child(authors_then_default, data_seed=s, budgets=tuple(budgets), threads=threads):
            yield {"benchmark": "authors", **row}


def speedup_to_authors_mcc(rows: list[dict]) -> list[tuple[int, float, float, float | None, float]]:
    """Per data seed: (seed, the authors' MCC, their seconds, our seconds to the same MCC,
    ratio). Ours is the shortest default budget whose final MCC reaches the authors' MCC
    (None, and ratio NaN, if none does)."""
    out = []
    for seed in sorted({int(r["data_seed"]) for r in rows}):
        mine = [r for r in rows if int(r["data_seed"]) == seed]
        theirs = [r for r in mine if r["config"] == "authors"][-1]
        target, their_s = float(theirs["mcc"]), float(theirs["seconds"])
        reached = sorted((int(r["steps"]), float(r["seconds"])) for r in mine
                         if r["config"] == "default" and float(r["mcc"]) >= target)
        ours = reached[0][1] if reached else None
        out.append((seed, target, their_s, ours, their_s / ours if ours else float("nan")))
    return out


def bench_variants(name: str, threads: int, seeds, steps: int = 10_000):
    for s in seeds:
        for row in in_child(fit_variants, data_seed=s, steps=steps, variants=VARIANTS[name], threads=threads):
            yield {"benchmark": name, **row}


def bench_startup(threads: int, repeats: int = 3) -> list[dict]:
    return [{"benchmark": "startup", **in_child(startup, threads=threads)} for _ in range(repeats)]


def bench_throughput(threads: int, steps: int = 2000) -> list[dict]:
    rows = []
    for n_rows in (10_000, 100_000, 1_000_000):
        for source in ("memory", "memmap"):
            rows.append({"benchmark": "throughput-N", **in_child(step_rate, n=5, n_rows=n_rows, steps=steps,
                                                                 source=source, threads=threads)})
    for n in (2, 5, 10, 20, 40):
        rows.append({"benchmark": "throughput-n", **in_child(step_rate, n=n, n_rows=40_000, steps=steps,
                                                             source="memory", threads=threads)})
    return rows


def bench_restarts(threads: int, steps: int = 1000) -> list[dict]:
    rows = []
    for k in (1, 4, 16):
        rows.append({"benchmark": "restarts", **in_child(step_rate, n=5, n_rows=40_000, steps=steps,
                                                         source="memory", k=k, threads=threads)})
    return rows


def report(rows: list[dict]) -> str:
    """Markdown tables per benchmark (medians over seeds where there are several)."""
    out = []
    by = lambda name: [r for r in rows if r["benchmark"] == name]  # noqa: E731
    budget = by("budget")
    if budget:
        out += ["### MCC and wall time against the step budget (5→5, default)", "",
                "| restarts | steps | seeds | median MCC | fits with MCC ≥ 0.9 | median s / fit |",
                "|---|---|---|---|---|---|"]
        for k, steps in sorted({(int(r["K"]), int(r["steps"])) for r in budget}):
            rs = [r for r in budget if (int(r["K"]), int(r["steps"])) == (k, steps)]
            mcc = np.array([float(r["mcc"]) for r in rs])
            out.append(f"| {k} | {steps} | {len(rs)} | {np.median(mcc):.3f} | {(mcc >= 0.9).sum()}/{len(rs)} | "
                       f"{np.median([float(r['seconds']) for r in rs]):.1f} |")
        out.append("")
    authors = by("authors")
    if authors:
        out += ["### Our default vs the authors' setting (5→5, same process and data)", "",
                "| config | steps | seeds | median MCC | median s / fit |", "|---|---|---|---|---|"]
        for key in sorted({(r["config"], int(r["steps"])) for r in authors}):
            rs = [r for r in authors if (r["config"], int(r["steps"])) == key]
            out.append(f"| {key[0]} | {key[1]} | {len(rs)} | {np.median([float(r['mcc']) for r in rs]):.3f} | "
                       f"{np.median([float(r['seconds']) for r in rs]):.1f} |")
        out += ["", "Time to the authors' MCC, per data seed (ours: the shortest budget that reaches it):", "",
                "| data seed | authors' MCC | authors' s | our s to that MCC | speed-up |", "|---|---|---|---|---|"]
        for seed, target, their_s, ours, ratio in speedup_to_authors_mcc(authors):
            ours_text = f"{ours:.1f}" if ours is not None else "not reached"
            out.append(f"| {seed} | {target:.3f} | {their_s:.1f} | {ours_text} | {ratio:.1f}× |")
        out.append("")
    for name, title in (("compile", "torch.compile (5→5, default, 10,000 steps; seconds include compilation)"),
                        ("gradients", "Hand-derived vs autograd gradients (5→5, default, same process)"),
                        ("restart-fits", "One fit vs 16 batched restarts, whole default fits (5→5, same process)")):
        rs = by(name)
        if not rs:
            continue
        out += [f"### {title}", "", "| config | data seed | MCC | wall s |", "|---|---|---|---|"]
        out += [f"| {r['config']} | {r['data_seed']} | {r['mcc']} | {r['seconds']} |" for r in rs]
        out += ["", "| config | seeds | median MCC | median wall s |", "|---|---|---|---|"]
        for config in dict.fromkeys(r["config"] for r in rs):
            mine = [r for r in rs if r["config"] == config]
            out.append(f"| {config} | {len(mine)} | {np.median([float(r['mcc']) for r in mine]):.3f} | "
                       f"{np.median([float(r['seconds']) for r in mine]):.1f} |")
        out.append("")
    startup_rows = by("startup")
    if startup_rows:
        out += ["### Fixed costs of a fresh process (10-step fits, 5→5)", ""]
        out += [f"- {r['mcc']}" for r in startup_rows]
        out.append("")
    for name, title in (("throughput-N", "Throughput and peak memory against N (n = d = 5)"),
                        ("throughput-n", "Throughput against the latent dimension n (d = n, N = 40,000)"),
                        ("restarts", "K restarts batched (N = 40,000, 5→5)")):
        rs = by(name)
        if not rs:
            continue
        out += [f"### {title}", "", "| N | n | K | X | ms / step | samples / s | wall s | peak RSS MB | "
                "peak anonymous MB | of which the fit MB |", "|---|---|---|---|---|---|---|---|---|---|"]
        out += [f"| {r['N']} | {r['n']} | {r['K']} | {r['source']} | {r['ms_per_step']} | {r['samples_per_s']} | "
                f"{r['seconds']} | {r['peak_mb']} | {r.get('peak_anon_mb') or '–'} | {r.get('fit_anon_mb') or '–'} |"
                for r in rs]
        out.append("")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("benchmark", choices=["budget", "authors", "throughput", "restarts", "startup", "compile",
                                                     "gradients", "restart-fits", "all"],
                        nargs="?")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data-seeds", nargs="+", type=int, default=list(BUDGET_SEEDS))
    parser.add_argument("--budgets", nargs="+", type=int, default=None,
                        help="step budgets (budget: 1000 2000 3000 5000 10000; authors: 250 500 1000 2000 5000)")
    parser.add_argument("--restarts", nargs="+", type=int, default=[1], help="K values of the budget benchmark")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--report", action="store_true")
    args = parser.parse_args()
    if args.report or args.benchmark is None:
        with open(args.out, newline="") as fh:
            print(report(list(csv.DictReader(fh))))
        return
    chosen = (["budget", "authors", "throughput", "restarts", "startup"] if args.benchmark == "all"
              else [args.benchmark])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    new_file = not args.out.exists()
    rows: list[dict] = []
    with open(args.out, "a", newline="") as fh:
        writer = csv.DictWriter(fh, FIELDS, extrasaction="ignore")
        if new_file:
            writer.writeheader()
        for name in chosen:
            run = {"budget": lambda: bench_budget(args.threads, args.data_seeds,
                                                  args.budgets or (1000, 2000, 3000, 5000, 10000), args.restarts),
                   "authors": lambda: bench_authors(args.threads, args.data_seeds,
                                                    args.budgets or (250, 500, 1000, 2000, 5000)),
                   "throughput": lambda: bench_throughput(args.threads),
                   "restarts": lambda: bench_restarts(args.threads),
                   "startup": lambda: bench_startup(args.threads),
                   "compile": lambda: bench_variants("compile", args.threads, args.data_seeds[:1]),
                   "gradients": lambda: bench_variants("gradients", args.threads, args.data_seeds),
                   "restart-fits": lambda: bench_variants("restart-fits", args.threads, args.data_seeds)}[name]
            for row in run():
                writer.writerow(row)
                fh.flush()
                rows.append(row)
                print(json.dumps(row), flush=True)
    print(report([{k: str(v) for k, v in r.items()} for r in rows]))


if __name__ == "__main__":
    main()
