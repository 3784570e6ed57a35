"""The authors' iVAE code beside ``nica fit``, on the same data (issue 22, item 4).

The authors' code (github ilkhem/iVAE) is not part of nica and nothing is downloaded:
pass a checkout of it with ``--authors-code``. Their ``main.py`` runs with their
``configs/ivae.yaml`` (an iVAE of 3 layers of 100 xtanh units, Adam 0.01, batches of 64,
20 epochs, plateau schedule), only the data's shape changed (``nps``, ``ns``, ``dl`` =
``dd`` = n, data seed ``s``): their generator writes the data set, they train, and their
score is their MCC of the fitted latents on all training rows. Then ``nica fit x.npy --u
u.npy --n-components n`` (the default command; ``nica transform`` for the latents) runs
on the very same rows. Both under ``/usr/bin/time``, one torch thread each: CPU s, wall
s, peak resident memory.

    python benchmarks/authors_ivae.py --authors-code /path/to/iVAE --n 10 --segments 40 --per-segment 1000 --data-seed 1

Three shims are needed for today's libraries and change nothing of their method:
``yaml.load`` without a Loader (PyYAML 6 requires one: ``FullLoader``),
``ReduceLROnPlateau(verbose=True)`` (the argument is gone from torch; dropped) and
numpy's removed aliases ``np.int`` and ``np.float`` (the builtins they named). Rows are
appended to ``benchmarks/results/authors_code.csv``.
"""

from __future__ import annotations

import argparse
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from settings import record_row  # noqa: E402
from targets import timed  # noqa: E402

OUT = Path(__file__).parent / "results" / "authors_code.csv"
FIELDS = ["n", "segments", "per_segment", "data_seed", "method", "mcc", "cpu_s", "wall_s", "peak_rss_mb", "command"]
THEIR_CODE = ("main.py", "data", "models", "runners", "metrics", "utils")

SHIM = """
import runpy, sys, numpy, torch, yaml
torch.set_num_threads(1)
numpy.int, numpy.float = int, float
_load = yaml.load
yaml.load = lambda stream, Loader=yaml.FullLoader: _load(stream, Loader=Loader)
_Plateau = torch.optim.lr_scheduler.ReduceLROnPlateau
class Plateau(_Plateau):
    def __init__(self, *args, verbose=None, **kwargs):
        super().__init__(*args, **kwargs)
torch.optim.lr_scheduler.ReduceLROnPlateau = Plateau
sys.argv = ["main.py"] + sys.argv[1:]
runpy.run_path("main.py", run_name="__main__")
"""


def their_config(authors: Path, n: int, segments: int, per_segment: int, data_seed: int) -> str:
    """Their configs/ivae.yaml with the data's shape and seed replaced."""
    lines = []
    for line in (authors / "configs" / "ivae.yaml").read_text().splitlines():
        key = line.split(":")[0].strip()
        value = {"nps": per_segment, "ns": segments, "dl": n, "dd": n, "s": data_seed}.get(key)
        lines.append(line if value is None else f"{key}: {value}")
    return "\n".join(lines) + "\n"


def run_theirs(authors: Path, work: Path, args: argparse.Namespace) -> tuple[dict, Path]:
    """Their main.py in ``work`` (their code linked in, our config beside): its row and
    the data set their generator wrote."""
    for name in THEIR_CODE:
        (work / name).symlink_to(authors / name)
    (work / "configs").mkdir()
    (work / "configs" / "nica.yaml").write_text(their_config(authors, args.n, args.segments, args.per_segment,
                                                             args.data_seed))
    command = [sys.executable, "-c", SHIM, "--config", "nica.yaml", "--run", str(work / "run"), "--seed",
               str(args.model_seed)]
    wall, cpu, rss = timed_in(work, command)
    with open(work / "run" / f"nica_{args.model_seed}_1.p", "rb") as handle:
        mcc = float(pickle.load(handle)[0][0])
    data = next((work / "run" / "datasets").glob("*.npz"))
    return dict(method="authors' iVAE code (configs/ivae.yaml)", mcc=round(mcc, 4), cpu_s=round(cpu, 1),
                wall_s=round(wall, 1), peak_rss_mb=round(rss), command="main.py --config ivae.yaml (shape set)"), data


def timed_in(folder: Path, command: list[str]) -> tuple[float, float, float]:
    """:func:`targets.timed` with ``folder`` as the working directory."""
    import os

    here = os.getcwd()
    os.chdir(folder)
    try:
        return timed(command)
    finally:
        os.chdir(here)


def run_ours(data: Path, work: Path, n: int) -> dict:
    """``nica fit`` then ``nica transform`` on the rows of their data set."""
    import nica

    arrays = np.load(data)
    x, s, u = arrays["x"].astype(np.float32), arrays["s"], np.asarray(arrays["u"])
    labels = u.argmax(1) if u.ndim == 2 else u
    np.save(work / "x.npy", x)
    np.save(work / "u.npy", labels.astype(np.int32))
    fit = ["nica", "fit", str(work / "x.npy"), "--u", str(work / "u.npy"), "--n-components", str(n),
           "--out", str(work / "model"), "--quiet"]
    wall, cpu, rss = timed(fit)
    subprocess.run(["nica", "transform", str(work / "model"), str(work / "x.npy"), "--out", str(work / "z.npy")],
                   check=True)
    mcc = float(nica.mean_corr_coef(s, np.load(work / "z.npy")))
    return dict(method="nica fit (default)", mcc=round(mcc, 4), cpu_s=round(cpu, 1), wall_s=round(wall, 1),
                peak_rss_mb=round(rss), command="nica fit x.npy --u u.npy --n-components n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--authors-code", type=Path, required=True, help="a checkout of github ilkhem/iVAE")
    parser.add_argument("--n", type=int, default=10)
    parser.add_argument("--segments", type=int, default=40)
    parser.add_argument("--per-segment", type=int, default=1000)
    parser.add_argument("--data-seed", type=int, default=1)
    parser.add_argument("--model-seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    authors = args.authors_code.resolve()
    missing = [name for name in THEIR_CODE + ("configs/ivae.yaml",) if not (authors / name).exists()]
    if missing:
        raise SystemExit(f"{authors} is not a checkout of the authors' iVAE code: no {', '.join(missing)}")
    shape = dict(n=args.n, segments=args.segments, per_segment=args.per_segment, data_seed=args.data_seed)
    with tempfile.TemporaryDirectory(prefix="nica-authors-") as folder:
        work = Path(folder)
        theirs, data = run_theirs(authors, work, args)
        record_row(args.out, FIELDS, {**shape, **theirs})
        ours = run_ours(data, work, args.n)
        record_row(args.out, FIELDS, {**shape, **ours})


if __name__ == "__main__":
    main()
