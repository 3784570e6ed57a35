"""``nica simulate``: the iVAE paper's nonstationary benchmark into an .npz."""

from __future__ import annotations

from pathlib import Path

import click

from nica.cli._common import check_outputs, overwrite_option, user_errors


@click.command()
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="output .npz")
@click.option("--n-sources", default=5, show_default=True, help="latent dimension n")
@click.option("--n-obs", default=None, type=int, help="observed dimension d (default n)")
@click.option("--n-segments", default=40, show_default=True)
@click.option("--per-segment", default=1000, show_default=True, help="points per segment")
@click.option("--layers", default=3, show_default=True, help="mixing MLP layers")
@click.option("--prior", type=click.Choice(["gauss", "laplace", "hypsecant"]), default="gauss",
              show_default=True, help="base noise of the sources")
@click.option("--activation", type=click.Choice(["xtanh", "lrelu", "none"]), default="xtanh", show_default=True)
@click.option("--uncentered", is_flag=True, help="per-segment source means ~ U(-5, 5)")
@click.option("--fresh-matrices", is_flag=True, help="a new mixing matrix per layer")
@click.option("--noise", default=0.0, show_default=True, help="std of Gaussian noise on x")
@click.option("--discrete", is_flag=True, help="Bernoulli observations")
@click.option("--seed", default=0, show_default=True)
@overwrite_option()
@user_errors
def simulate(out: Path, n_sources: int, n_obs: int | None, n_segments: int, per_segment: int,
             layers: int, prior: str, activation: str, uncentered: bool, fresh_matrices: bool,
             noise: float, discrete: bool, seed: int, overwrite: bool) -> None:
    """Simulate the iVAE paper's nonstationary benchmark into an .npz (x, u, s, ...)."""
    from nica.datasets import make_nonstationary
    from nica.datasets.io import save_npz

    check_outputs([out], overwrite)
    data = make_nonstationary(
        n_sources, n_obs, n_segments, per_segment, n_layers=layers, base_noise=prior,
        activation=activation, uncentered=uncentered, repeat_matrix=not fresh_matrices,
        noise_std=noise, discrete=discrete, random_state=seed,
    )
    save_npz(out, overwrite=overwrite, x=data.x, u=data.u, s=data.s, means=data.means,
             scales=data.scales)
    click.echo(f"wrote {out}: x {data.x.shape}, u {data.u.shape} ({n_segments} segments), s {data.s.shape}")
