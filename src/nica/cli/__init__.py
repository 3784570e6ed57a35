"""The ``nica`` command line: simulate, fit, select-n, transform, evaluate, consistency, info,
demo, sweep, reproduce, predict-u, causal.

No command replaces an existing output unless given ``--overwrite``; outputs are checked
before any work and written atomically, so a failed command leaves no partial file.

One module per command or group of commands, each a thin layer over the Python API
that imports the heavy parts inside the command; :mod:`nica.cli._common` holds what they
share (one-line errors, output checks, option groups). A new command is a
``click.command`` in its own module, added to :func:`main` below.
"""

from __future__ import annotations

import sys
import warnings

import click

from nica.cli._common import USER_ERRORS, data_options, one_line_warning, user_errors
from nica.cli.causal import causal
from nica.cli.consistency import consistency_command
from nica.cli.demo import demo
from nica.cli.fit import fit, parse_candidates, select_n
from nica.cli.info import info
from nica.cli.latents import evaluate, transform
from nica.cli.predict import predict_u
from nica.cli.regimes import predict_regime
from nica.cli.reproduce import reproduce_command
from nica.cli.simulate import simulate
from nica.cli.sweep import sweep_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="nica")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="torch threads for the command's fits and other work (default: fits run on one "
                   "thread, the rest on torch's own count). A fit of these small networks gains "
                   "little from a second thread, and on a busy machine extra threads can make it "
                   "15x slower (docs/performance.md, Threads)")
@click.pass_context
def main(ctx: click.Context, threads: int | None) -> None:
    """nica: identifiable VAEs and nonlinear ICA."""
    # fits take the thread count as their n_threads (nica._threads: one thread by default)
    ctx.obj = {"threads": threads}
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    # warnings print as one line while a command runs; the caller's handler comes back after
    ctx.with_resource(warnings.catch_warnings())
    warnings.filterwarnings("default", category=UserWarning)  # shown, as one line, whatever the caller's filters
    warnings.showwarning = one_line_warning


for _command in (simulate, fit, select_n, transform, evaluate, consistency_command, info, demo, sweep_command,
                 reproduce_command, predict_u, predict_regime, causal):
    main.add_command(_command)
del _command

__all__ = ["USER_ERRORS", "data_options", "main", "parse_candidates", "user_errors"]

if __name__ == "__main__":
    sys.exit(main())
