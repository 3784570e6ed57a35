"""The targets of issue 22, measured as a user runs them: the default ``nica fit`` command
on data files, then ``nica transform``, MCC against the true sources.

    python benchmarks/targets.py --name authors-20-20 --n 20 --segments 40 --per-segment 2500 --data-seed 9021
    python benchmarks/targets.py --name nonstationary-50-50 --n 50 --segments 100 --per-segment 1000 --data-seed 9051
    python benchmarks/targets.py --name nonstationary-50-50 --n 50 --segments 100 --per-segment 1000 --data-seed 9051 --seed 1
    python benchmarks/targets.py --name rows-2m-10 --n 10 --segments 40 --per-segment 50000 --data-seed 9031 --stream
    python benchmarks/targets.py --name paper-5-5 --n 5 --segments 40 --per-segment 1000 --data-seed 1001

Data: the paper's generator (:func:`nica.make_nonstationary`, the port of the authors'
generator: one mixing matrix reused by every layer, xtanh, Gaussian sources), written as
``x.npy``, ``u.npy`` and ``s.npy`` under ``--dir`` (default ``/tmp/nica-targets/NAME``,
never the repository) by this process before any fit. The fit is ``nica fit x.npy --u
u.npy --n-components n --out DIR`` (``--stream`` adds ``--stream`` to fit and transform:
x memory-mapped and read a batch at a time) run under ``/usr/bin/time``, which gives its
wall time, its CPU time (user + system: the process's ``time.process_time`` at exit, one
torch thread by default) and its peak resident memory (``%M``). One row per run is
appended to ``--out``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from settings import record_row  # noqa: E402

OUT = Path("benchmarks/results/targets.csv")
FIELDS = ["name", "n", "segments", "per_segment", "data_seed", "stream", "model", "mcc", "fit_wall_s",
          "fit_cpu_s", "fit_peak_rss_mb", "transform_wall_s", "transform_peak_rss_mb", "command"]


def write_data(folder: Path, n: int, segments: int, per_segment: int, seed: int) -> None:
    """x.npy, u.npy and s.npy of ``make_nonstationary(n, n)`` (skipped when present)."""
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / "s.npy").exists():
        return
    from nica import make_nonstationary

    data = make_nonstationary(n, n, n_segments=segments, n_per_segment=per_segment, random_state=seed)
    np.save(folder / "x.npy", data.x.astype(np.float32))
    np.save(folder / "u.npy", data.u.astype(np.int32))
    np.save(folder / "s.npy", data.s.astype(np.float32))


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """``--n``, ``--segments``, ``--per-segment`` and ``--data-seed`` of a
    ``make_nonstationary(n, n)`` tuning data set (50 latents, 100 x 1,000 by default)."""
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--segments", type=int, default=100)
    parser.add_argument("--per-segment", type=int, default=1000)
    parser.add_argument("--data-seed", type=int, required=True)


def load_data(args: argparse.Namespace) -> tuple[str, np.ndarray, np.ndarray, np.ndarray]:
    """The data set of :func:`add_data_arguments`' arguments, written once under
    /tmp/nica-targets: its folder name, x ``(N, n)``, u ``(N,)`` and s ``(N, n)``."""
    folder = Path("/tmp/nica-targets") / f"n{args.n}-{args.segments}-{args.per_segment}-{args.data_seed}"
    write_data(folder, args.n, args.segments, args.per_segment, args.data_seed)
    x, u, s = (np.load(folder / f"{name}.npy") for name in ("x", "u", "s"))
    return folder.name, x, u, s


def timed(command: list[str]) -> tuple[float, float, float]:
    """Run ``command`` under /usr/bin/time: (wall s, CPU s, peak RSS MB); its output shown."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        subprocess.run(["/usr/bin/time", "-o", report.name, "-f", "%e %U %S %M", *command], check=True)
        wall, user, system, peak_kb = report.read().split()[-4:]
    return float(wall), float(user) + float(system), float(peak_kb) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--segments", type=int, default=40)
    parser.add_argument("--per-segment", type=int, default=1000)
    parser.add_argument("--data-seed", type=int, required=True)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--seed", type=int, default=None, help="the fit's --seed (model seed; nica fit's default: 0)")
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    folder = args.dir or Path("/tmp/nica-targets") / f"{args.name}-{args.data_seed}"
    write_data(folder, args.n, args.segments, args.per_segment, args.data_seed)
    model, latents = folder / "model", folder / "z.npy"
    shutil.rmtree(model, ignore_errors=True)
    latents.unlink(missing_ok=True)
    nica = str(Path(sys.executable).with_name("nica"))
    stream = ["--stream"] if args.stream else []
    seed = ["--seed", str(args.seed)] if args.seed is not None else []
    fit = [nica, "fit", str(folder / "x.npy"), "--u", str(folder / "u.npy"), "--n-components", str(args.n),
           "--out", str(model), "--quiet", *seed, *stream]
    fit_wall, fit_cpu, fit_rss = timed(fit)
    transform = [nica, "transform", str(model), str(folder / "x.npy"), "--out", str(latents), *stream]
    transform_wall, _, transform_rss = timed(transform)
    from nica import load, mean_corr_coef

    z, s = np.load(latents), np.load(folder / "s.npy")
    record_row(args.out, FIELDS, dict(
        name=args.name, n=args.n, segments=args.segments, per_segment=args.per_segment, data_seed=args.data_seed,
        stream=args.stream, model=type(load(model)).__name__, mcc=mean_corr_coef(s, z),
        fit_wall_s=fit_wall, fit_cpu_s=fit_cpu, fit_peak_rss_mb=fit_rss, transform_wall_s=transform_wall,
        transform_peak_rss_mb=transform_rss, command=" ".join(["nica", *fit[1:]])))


if __name__ == "__main__":
    main()
