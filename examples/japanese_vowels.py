"""Real speech: are the latents nica gives the same from seed to seed, and what do they carry?

JapaneseVowels (nine male speakers saying the vowel pair /ae/; 12 LPC cepstrum
coefficients a frame, 7-29 frames an utterance; 270 training and 370 held-out utterances,
the held-out ones recorded on other occasions) ships inside sktime / aeon, so nothing is
downloaded. There are no true sources; as in examples/basic_motions.py identifiability is
judged by

* consistency: strong MCC between the latents of every pair of seeds (and weak,
  CCA-aligned MCC), on the held-out utterances, for the model ``nica fit`` picks (the
  flow), the plain VAE and CEBRA (and the iVAE with ``--methods``); then
  ``nica.consistency`` for the flow, the honest way: each seed on its own rotation of
  the whitened data, beside the VAE, the flow with u shuffled, and chance;
* a downstream task: the speaker of each held-out utterance, by logistic regression on
  the latents (per frame, and per utterance from each latent's mean and standard
  deviation over the utterance), beside the same classifier on the raw coefficients and
  on their top n principal components (the flow's input when n < 12).

u is the utterance (270 labels: each utterance is a segment with its own statistics, as a
recording is in BasicMotions); the speaker is never given to the models, so predicting it
is a fair downstream task. The held-out utterances are new: their latents come from
``transform(X)`` without u.

Run:  python examples/japanese_vowels.py            (5 seeds; tens of minutes on one core)
      python examples/japanese_vowels.py --quick    (2 seeds, short fits: the test suite's run)
Writes ``japanese-vowels.csv`` (one row per fit), ``japanese-vowels-summary.csv``,
``japanese-vowels.png`` (per-utterance latent means by speaker) and, with the flow,
``japanese-vowels-consistency.json`` / ``.png`` to --out.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _compare import add_baseline, available_methods, check_consistency, downstream_accuracy  # noqa: E402
from _compare import example_parser, fit_methods, group_summaries, print_table, summarise, write_tables  # noqa: E402

N_COMPONENTS = 6  # the knee of `nica select-n --candidates 2,4,6,8,10,12` on the training frames (docs/real-data.md)
FULL = dict(seeds=5, max_steps=None, cebra_iterations=5_000)
QUICK = dict(seeds=2, max_steps=100, cebra_iterations=50)
ACCURACY = ("speaker_accuracy_frame", "speaker_accuracy_utterance")


def speaker_accuracy(z_train, train, z_test, test) -> tuple[float, float]:
    """Held-out speaker accuracy from latents: per frame and per utterance."""
    return downstream_accuracy(z_train, train.utterance, train.speaker, z_test, test.utterance, test.speaker)


def plot(latents: dict[str, list[np.ndarray]], test, path: Path) -> None:
    """For each method (seed 0), the held-out utterances in the plane of the two latents
    whose utterance means separate the speakers best (largest between-speaker over
    within-speaker variance), one point per utterance, coloured by speaker."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(latents)
    fig, axes = plt.subplots(1, len(methods), figsize=(4 * len(methods), 3.8), squeeze=False)
    colours = plt.get_cmap("tab10").colors
    for col, method in enumerate(methods):
        z = latents[method][0]
        n = z.shape[1]
        means, speakers = group_summaries(z, test.utterance, test.speaker)
        means = means[:, :n]
        score = [np.var([means[speakers == s, i].mean() for s in np.unique(speakers)])
                 / max(np.mean([means[speakers == s, i].var() for s in np.unique(speakers)]), 1e-12)
                 for i in range(n)]
        a, b = np.argsort(score)[::-1][:2] if n > 1 else (0, 0)
        ax = axes[0, col]
        for k, s in enumerate(np.unique(speakers)):
            rows = speakers == s
            ax.scatter(means[rows, a], means[rows, b], s=8, color=colours[k % 10], label=f"speaker {s}")
        ax.set_xlabel(f"z{a + 1} (utterance mean)")
        ax.set_ylabel(f"z{b + 1} (utterance mean)")
        ax.set_title(method)
    axes[0, 0].legend(fontsize=6, ncol=2, loc="best", markerscale=1.5)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = example_parser(__doc__.split("\n\n")[0], "flow,vae,cebra", "japanese-vowels", N_COMPONENTS)
    args = parser.parse_args(argv)
    settings = dict(QUICK if args.quick else FULL)
    seeds = range(args.seeds or settings["seeds"])

    import torch

    from nica.datasets.tabular import MissingDependencyError
    from nica.datasets.vowels import load_japanese_vowels

    torch.set_num_threads(1)
    try:
        train, test = load_japanese_vowels("train"), load_japanese_vowels("test")
    except MissingDependencyError as exc:  # the optional extra is missing: nothing to show
        print(f"skipped: {exc}")
        return {}
    methods = available_methods(args.methods)

    rows, latents = fit_methods(methods, seeds, train.x, train.utterance, test.x, args.n_components, settings,
                                lambda z_train, z_test: speaker_accuracy(z_train, train, z_test, test), ACCURACY,
                                "speaker accuracy {:.3f} per frame, {:.3f} per utterance")
    summary = summarise(rows, latents, ACCURACY)
    add_baseline("raw x", speaker_accuracy(train.x, train, test.x, test), ACCURACY, summary, rows)
    from sklearn.decomposition import PCA

    pca = PCA(args.n_components).fit(train.x)  # the flow's input when n < 12: the top principal components
    add_baseline("pca", speaker_accuracy(pca.transform(train.x), train, pca.transform(test.x), test), ACCURACY,
                 summary, rows)
    majority = float(np.max(np.bincount(group_summaries(test.x, test.utterance, test.speaker)[1])) / test.n_utterances)

    stem = args.name + ("-quick" if args.quick else "")
    write_tables(args.out, stem, rows, summary)
    if len(seeds) > 0 and methods:
        plot(latents, test, args.out / f"{stem}.png")
    print(f"\nJapaneseVowels, n = {args.n_components}, {len(seeds)} seeds; held-out utterances (u unknown at "
          f"transform time); the most frequent speaker is {majority:.3f} of them")
    print_table(summary, ACCURACY, "speaker acc.")
    if "flow" in methods and len(seeds) > 1:
        print("\nnica.consistency of the default model (fitted on the training utterances, agreement on the "
              "held-out ones):")
        summary["consistency check"] = check_consistency(train.x, train.utterance, test.x, args.n_components,
                                                         len(seeds), settings["max_steps"], args.out, stem, args.jobs)
    print(f"wrote {args.out}/{stem}.csv, {stem}-summary.csv and {stem}.png")
    return summary


if __name__ == "__main__":
    sys.exit(0 if main() is not None else 1)
