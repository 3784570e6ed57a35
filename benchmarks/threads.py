"""A default fit alone and beside busy processes, with nica's thread policy and with torch's.

    python benchmarks/threads.py --busy 2 --repeats 2

For each model path of ``nica fit`` (``--model auto`` on 5 -> 5 data: the flow; ``--model
ivae``) and each thread setting (nica's default: one thread for the fit; ``--threads 2``:
torch's own count on a 2-core machine), the command's wall time is measured alone and
with ``--busy`` CPU-bound processes running beside it, each in its own session (as other
programs on a user's laptop; run it under ``taskset -c 0,1`` to see a 2-core laptop on a
larger machine). Also the Python API (``nica.IFlow(5).fit`` in a fresh
interpreter). Rows go to ``benchmarks/results/threads.csv``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from settings import append_row  # noqa: E402

OUT = Path("benchmarks/results/threads.csv")
FIELDS = ["command", "threads", "busy", "repeat", "seconds", "cpu_count"]
BUSY = "import time\nwhile True:\n    sum(i * i for i in range(10_000))\n"
API = ("import sys, nica\nd = nica.make_nonstationary(5, random_state=1)\n"
       "nica.IFlow(5, max_steps=int(sys.argv[1]), random_state=0).fit(d.x, d.u)\n")


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--busy", type=int, default=2, help="CPU-bound processes beside the loaded runs")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--max-steps", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nica-threads-"))
    data = work / "d.npz"
    subprocess.run([sys.executable, "-m", "nica", "simulate", "--out", str(data), "--seed", "1"], check=True,
                   stdout=subprocess.DEVNULL)
    fit = [sys.executable, "-m", "nica"]
    commands = {
        "nica fit (auto: flow)": lambda t, i: fit + (["--threads", t] if t else []) + [
            "fit", str(data), "--n-components", "5", "--max-steps", str(args.max_steps), "--quiet",
            "--overwrite", "--out", str(work / f"m{i}")],
        "nica fit --model ivae": lambda t, i: fit + (["--threads", t] if t else []) + [
            "fit", str(data), "--n-components", "5", "--model", "ivae", "--max-steps", str(args.max_steps),
            "--quiet", "--overwrite", "--out", str(work / f"m{i}")],
        "python: IFlow(5).fit": lambda t, i: [sys.executable, "-c", API if not t else
                                             API.replace("random_state=0", f"random_state=0, n_threads={t}"),
                                             str(args.max_steps)],
    }
    for busy in (0, args.busy):
        procs = [subprocess.Popen([sys.executable, "-c", BUSY], start_new_session=True) for _ in range(busy)]
        try:
            time.sleep(1.0 if busy else 0.0)
            for name, make in commands.items():
                for threads in ("", "2"):
                    for repeat in range(args.repeats):
                        seconds = timed(make(threads, repeat))
                        row = dict(command=name, threads=threads or "default (1 for the fit)", busy=busy,
                                   repeat=repeat, seconds=round(seconds, 2), cpu_count=len(os.sched_getaffinity(0)))
                        append_row(args.out, FIELDS, row)
                        print(row, flush=True)
        finally:
            for p in procs:
                p.kill()


if __name__ == "__main__":
    main()
