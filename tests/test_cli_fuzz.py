"""Malformed input to ``nica fit`` / ``transform`` / ``evaluate``: always one ``Error:`` line.

Every case must end with exit code 1, exactly one line starting with ``Error:``, no
traceback, and no output file (nor a temporary one) left behind.  Nothing here trains
for more than a few steps.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import nica
from nica.cli import main

FIT = ["--model", "ivae", "--n-components", "2", "--max-steps", "3", "--hidden-dim", "8", "--layers", "2",
       "--batch-size", "50", "--device", "cpu", "--quiet"]
N = 60


def _x(n: int = N, d: int = 2) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, d))


def _u(n: int = N) -> np.ndarray:
    return np.arange(n) % 4


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("fuzz") / "model"
    nica.IVAE(2, hidden_dim=8, n_layers=2, batch_size=50, max_steps=3, device="cpu",
              random_state=0).fit(_x(), _u()).save(path)
    return path


# ---------------------------------------------------------------- malformed data files
def npz(**arrays: np.ndarray) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        np.savez(d / "d.npz", **arrays)
        return d / "d.npz"
    return make


def text(name: str, content: str | bytes) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        path = d / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return path
    return make


def truncated_npz(d: Path) -> Path:
    np.savez(d / "full.npz", x=_x(), u=_u())
    data = (d / "full.npz").read_bytes()
    (d / "full.npz").unlink()
    (d / "d.npz").write_bytes(data[: len(data) // 3])
    return d / "d.npz"


def parquet(d: Path) -> Path:
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    pd.DataFrame({"a": _x()[:, 0], "b": _x()[:, 1], "seg": _u()}).to_parquet(d / "d.parquet")
    return d / "d.parquet"


def hdf5(d: Path) -> Path:
    h5py = pytest.importorskip("h5py")
    with h5py.File(d / "d.h5", "w") as fh:
        fh["x"] = _x()
        fh["labels"] = _u()
    return d / "d.h5"


def csv_rows(rows: list[str]) -> Callable[[Path], Path]:
    return text("d.csv", "a,b,seg\n" + "\n".join(rows) + "\n")


GOOD_ROWS = [f"{a!r},{b!r},{k}" for (a, b), k in zip(_x().tolist(), _u())]
x_nan = _x()
x_nan[7, 1] = np.nan

DATA_CASES: dict[str, tuple[Callable[[Path], Path], list[str], str]] = {
    # name: (make the file, extra options, a fragment of the error)
    "truncated-npz": (truncated_npz, [], "could not read"),
    "garbage-npz": (text("d.npz", b"\x00\x01 not a zip" * 40), [], "could not read"),
    "empty-npz": (text("d.npz", b""), [], "could not read"),
    "npz-wrong-keys": (npz(X=_x(), U=_u()), [], "no array 'x'"),
    "npz-object-array": (npz(x=_x(), u=np.array([object()] * N)), [], "object array"),
    "npz-object-x": (npz(x=np.array([[{"a": 1}, 2]] * N, dtype=object), u=_u()), [], "object array"),
    "npz-string-x": (npz(x=np.array([["a", "b"]] * N), u=_u()), [], "must hold numbers"),
    "npz-complex-x": (npz(x=_x() + 1j, u=_u()), [], "real-valued"),
    "npz-huge-values": (npz(x=np.full((N, 2), 1e308), u=_u()), [], "too large for float32"),
    "npz-inf": (npz(x=np.where(_x() > 1.5, np.inf, _x()), u=_u()), [], "NaN or infinite"),
    "npz-nan": (npz(x=x_nan, u=_u()), [], "data row 8"),
    "npz-3d-x": (npz(x=_x()[:, :, None], u=_u()), [], "must be 2-D"),
    "npz-no-features": (npz(x=np.zeros((N, 0)), u=_u()), [], "at least 2 samples and 1 feature"),
    "npz-one-row": (npz(x=_x(1), u=_u(1)), [], "at least 2 samples"),
    "npz-fewer-features-than-components": (npz(x=_x(d=1), u=_u()), [], "n_components=2 exceeds"),
    "npz-short-u": (npz(x=_x(), u=_u(N - 1)), [], "60 rows but u has 59"),
    "npz-nan-u": (npz(x=_x(), u=np.where(_u() == 1, np.nan, _u())), [], "u contains NaN"),
    "npz-single-label": (npz(x=_x(), u=np.zeros(N)), [], "single label"),
    "npz-id-as-u": (npz(x=_x(), u=np.arange(N)), [], "set --u-type continuous"),
    "npz-2d-u-not-onehot": (npz(x=_x(), u=np.ones((N, 3), int)), [], "one-hot"),
    "npy-that-is-npz": (lambda d: (npz(x=_x())(d).rename(d / "d.npy"), d / "d.npy")[1], [], "not an .npy array"),
    "csv-strings": (csv_rows(GOOD_ROWS[:5] + ["1.0,oops,1"] + GOOD_ROWS[6:]), ["--u-col", "seg"],
                    "'b' (holds text such as 'oops')"),
    "csv-empty": (text("d.csv", ""), ["--u-col", "seg"], "is empty"),
    "csv-header-only": (text("d.csv", "a,b,seg\n"), ["--u-col", "seg"], "no data rows"),
    "csv-ragged": (csv_rows(GOOD_ROWS[:10] + ["1.0,2.0"] + GOOD_ROWS[10:]), ["--u-col", "seg"],
                   "rows of different lengths"),
    "csv-huge": (csv_rows([r.replace(r.split(",")[0], "1e308", 1) for r in GOOD_ROWS]), ["--u-col", "seg"],
                 "too large for float32"),
    "csv-overflow-to-inf": (csv_rows(["1e999,1,0"] + GOOD_ROWS[1:]), ["--u-col", "seg"], "NaN or infinite"),
    "csv-nan": (csv_rows(["nan,1,0"] + GOOD_ROWS[1:]), ["--u-col", "seg"], "the first in data row 1 (counting from 1, "
                "without the header), column 'a'"),
    "csv-missing-field": (csv_rows(GOOD_ROWS[:3] + [",1,1"] + GOOD_ROWS[4:]), ["--u-col", "seg"], "data row 4"),
    "csv-binary": (text("d.csv", bytes(range(256)) * 4), ["--u-col", "seg"], "could not read"),
    "csv-no-u-column": (csv_rows(GOOD_ROWS), ["--u-col", "segment"], "'segment' is neither a column name"),
    "csv-u-column-also-x": (csv_rows(GOOD_ROWS), ["--u-col", "seg", "--x-cols", "a,seg"], "both x and u"),
    "csv-without-u": (csv_rows(GOOD_ROWS), [], "no auxiliary variable"),
    "parquet-missing-column": (parquet, ["--u-col", "segment"], "'segment' is neither"),
    "parquet-corrupt": (text("d.parquet", b"PAR1" + b"\xff" * 100), ["--u-col", "seg"], "could not read"),
    "hdf5-missing-dataset": (hdf5, [], "no auxiliary variable 'u'"),
    "hdf5-wrong-x-key": (hdf5, ["--x-key", "data", "--u-key", "labels"], "no dataset 'data'"),
    "hdf5-corrupt": (text("d.h5", b"\x89HDF\r\n\x1a\n" + b"\x00" * 50), [], "could not read"),
    "missing-file": (lambda d: d / "nothing.npz", [], "file not found"),
    "directory": (lambda d: (d / "data.npz").mkdir() or d / "data.npz", [], "is a directory"),
    "unsupported-suffix": (text("d.xlsx", "1,2\n"), [], "unsupported file type"),
}


def assert_clean_failure(result, fragment: str, folder: Path, before: set[str]) -> None:
    """One ``Error:`` line naming the problem, exit code 1, no traceback, no new files."""
    output = result.output
    assert result.exit_code == 1, (result.exit_code, output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception  # handled, not a crash
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], output
    assert fragment in errors[0], (fragment, errors[0])
    assert {p.name for p in folder.iterdir()} == before, "an output or temporary file was left behind"


def invoke(args: list) -> object:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=True)


@pytest.mark.parametrize("case", list(DATA_CASES))
def test_fit_with_malformed_data(tmp_path, case):
    make, options, fragment = DATA_CASES[case]
    data = make(tmp_path)
    before = {p.name for p in tmp_path.iterdir()}
    result = invoke(["fit", data, *options, "--out", tmp_path / "model", *FIT])
    assert_clean_failure(result, fragment, tmp_path, before)


TRANSFORM_CASES = {
    name: DATA_CASES[name] for name in ("truncated-npz", "npz-wrong-keys", "npz-object-array", "npz-huge-values",
                                        "npz-nan", "npz-3d-x", "csv-strings", "csv-ragged", "csv-empty",
                                        "parquet-missing-column", "missing-file", "directory")
}  # (data without u is fine: the default encoder does not see u)
TRANSFORM_CASES.update({
    "more-features": (npz(x=_x(d=3), u=_u()), [], "X has 3 features but the model was fitted with 2"),
    "unseen-labels": (npz(x=_x(), u=_u() + 10), [], "not seen at fit time"),
    "fractional-u": (npz(x=_x(), u=_u() + 0.5), [], "fitted with categorical u"),
    "text-u": (npz(x=_x(), u=np.array(["a"] * N)), [], "not seen at fit time"),
})


@pytest.mark.parametrize("case", list(TRANSFORM_CASES))
def test_transform_with_malformed_data(tmp_path, model_dir, case):
    make, options, fragment = TRANSFORM_CASES[case]
    data = make(tmp_path)
    before = {p.name for p in tmp_path.iterdir()}
    result = invoke(["transform", model_dir, data, *options, "--out", tmp_path / "z.npy"])
    assert_clean_failure(result, fragment, tmp_path, before)


def _broken_model(change: Callable[[Path], None]) -> Callable[[Path, Path], Path]:
    def make(d: Path, good: Path) -> Path:
        target = d / "model"
        target.mkdir()
        for f in good.iterdir():
            (target / f.name).write_bytes(f.read_bytes())
        change(target)
        return target
    return make


MODEL_CASES = {
    "missing": (lambda d, good: d / "nomodel", "no saved model"),
    "a-file": (lambda d, good: npz(x=_x())(d), "expected a directory"),
    "config-not-json": (_broken_model(lambda m: (m / "config.json").write_text("{oops")), "corrupt"),
    "config-binary": (_broken_model(lambda m: (m / "config.json").write_bytes(b"\xff\xfe\x00")), "corrupt"),
    "future-format": (_broken_model(lambda m: (m / "config.json").write_text('{"format_version": 99}')),
                      "upgrade nica"),
    "weights-truncated": (_broken_model(lambda m: (m / "weights.safetensors").write_bytes(
        (m / "weights.safetensors").read_bytes()[:100])), "could not be read"),
    "weights-missing": (_broken_model(lambda m: (m / "weights.safetensors").unlink()), "weights.safetensors"),
}


@pytest.mark.parametrize("case", list(MODEL_CASES))
def test_transform_with_broken_model(tmp_path, model_dir, case):
    make, fragment = MODEL_CASES[case]
    model = make(tmp_path, model_dir)
    data = npz(x=_x(), u=_u())(tmp_path)
    before = {p.name for p in tmp_path.iterdir()}
    result = invoke(["transform", model, data, "--out", tmp_path / "z.npy"])
    assert_clean_failure(result, fragment, tmp_path, before)
    result = invoke(["info", model])
    assert_clean_failure(result, fragment, tmp_path, before)


def _latents(name: str, z: np.ndarray | bytes) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        if isinstance(z, bytes):
            (d / name).write_bytes(z)
        else:
            np.save(d / name, z)
        return d / name
    return make


s_true = _x()
EVALUATE_CASES = {
    # name: (latents, data with s, fragment)
    "latents-truncated": (_latents("z.npy", b"\x93NUMPY\x01\x00v\x00{'descr'"), npz(s=s_true), "could not read"),
    "latents-missing": (lambda d: d / "z.npy", npz(s=s_true), "file not found"),
    "latents-directory": (lambda d: (d / "z.npy").mkdir() or d / "z.npy", npz(s=s_true), "is a directory"),
    "latents-wrong-rows": (_latents("z.npy", _x(N - 5)), npz(s=s_true), "rows"),
    "latents-too-few-columns": (_latents("z.npy", _x(d=1)), npz(s=s_true), "fewer than the 2 sources"),
    "latents-nan": (_latents("z.npy", x_nan), npz(s=s_true), "z contains 1 NaN"),
    "latents-strings": (_latents("z.npy", np.array([["a", "b"]] * N)), npz(s=s_true), "could not convert"),
    "data-without-s": (_latents("z.npy", _x()), npz(x=_x()), "no true sources 's'"),
    "s-text-column": (_latents("z.npy", _x()),
                      text("d.csv", "s1,s2\n" + "\n".join(f"{a},b{k}" for a, k in zip(_x()[:, 0], _u()))),
                      "non-numeric"),
    "s-inf": (_latents("z.npy", _x()), npz(s=np.where(_x() > 1.0, np.inf, _x())), "s contains"),
}


@pytest.mark.parametrize("case", list(EVALUATE_CASES))
def test_evaluate_with_malformed_input(tmp_path, case):
    make_z, make_data, fragment = EVALUATE_CASES[case]
    z, data = make_z(tmp_path), make_data(tmp_path)
    options = ["--s-cols", "s1,s2"] if data.suffix == ".csv" else []
    before = {p.name for p in tmp_path.iterdir()}
    result = invoke(["evaluate", z, data, *options, "--out", tmp_path / "report.json"])
    assert_clean_failure(result, fragment, tmp_path, before)
