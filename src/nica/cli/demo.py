"""``nica demo``: the paper's benchmark, nica fit's default model beside the iVAE and a
plain VAE, in one figure."""

from __future__ import annotations

from pathlib import Path

import click

from nica.cli._common import overwrite_option, user_errors


@click.command()
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("nica-output"),
              show_default=True, help="where the figure goes")
@click.option("--seed", default=2020, show_default=True, help="data seed")
@click.option("--quick", is_flag=True, help="a small problem that runs in seconds (for smoke tests)")
@overwrite_option("replace the figure in --out-dir if it exists")
@user_errors
def demo(out_dir: Path, seed: int, quick: bool, overwrite: bool) -> None:
    """Simulate the paper's benchmark, fit nica fit's default model, the iVAE and a plain
    VAE, compare, and plot."""
    from nica.demo import run_demo

    run_demo(out_dir, seed=seed, quick=quick, echo=click.echo, overwrite=overwrite)
