"""Data formats: CSV/parquet columns, HDF5 and .npz arrays, DataFrames, AnnData, sparse X."""

from __future__ import annotations

import numpy as np
import pytest

import nica
from nica.datasets import tabular
from nica.datasets.io import DataFileError, array_names, load_dataset, read_array
from nica.datasets.tabular import MissingDependencyError, Table, split_aux, to_array, to_aux

pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
h5py = pytest.importorskip("h5py")
anndata = pytest.importorskip("anndata")


@pytest.fixture
def frame(rng) -> pd.DataFrame:
    """12 rows: numeric a, b, c, an integer segment and a text condition."""
    return pd.DataFrame({
        "a": rng.normal(size=12), "b": rng.normal(size=12), "c": rng.normal(size=12),
        "segment": np.arange(12) % 3, "condition": np.where(np.arange(12) % 2, "treated", "control"),
    })


def write_csv(path, frame) -> None:
    frame.to_csv(path, index=False)


# ---------------------------------------------------------------- CSV
def test_csv_columns_by_name_index_and_range(tmp_path, frame):
    path = tmp_path / "d.csv"
    write_csv(path, frame)
    # x defaults to every column u does not take; the text column makes that an error
    with pytest.raises(TypeError, match=r"non-numeric column\(s\).*'condition'.*--x-cols"):
        load_dataset(path, u_cols="segment")
    ds = load_dataset(path, x_cols="a,b,c", u_cols="condition")
    np.testing.assert_allclose(ds.x, frame[["a", "b", "c"]].to_numpy())
    assert list(ds.u[:2]) == ["control", "treated"]
    by_index = load_dataset(path, x_cols="0:3", u_cols="3")
    np.testing.assert_allclose(by_index.x, ds.x)
    np.testing.assert_array_equal(by_index.u, frame["segment"].to_numpy())
    assert by_index.u.dtype.kind == "i"  # integer labels stay integers
    mixed = load_dataset(path, x_cols=["a", 1, -3], u_cols=[3])
    np.testing.assert_allclose(mixed.x, frame[["a", "b", "c"]].to_numpy())


def test_csv_u_and_s_columns_leave_the_rest_to_x(tmp_path, frame):
    path = tmp_path / "d.csv"
    write_csv(path, frame.drop(columns="condition"))
    ds = load_dataset(path, u_cols="segment", s_cols="c")
    np.testing.assert_allclose(ds.x, frame[["a", "b"]].to_numpy())
    np.testing.assert_allclose(ds.s, frame[["c"]].to_numpy())
    only_s = load_dataset(path, s_cols="c", parts=("s",))
    assert only_s.x is None and only_s.u is None and only_s.s.shape == (12, 1)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(x_cols="a,zzz", u_cols="segment"), r"x_cols \(--x-cols\): 'zzz' is neither a column name"),
        (dict(x_cols="a", u_cols="7"), r"u_cols \(--u-col\): '7'.*\(0\.\.4\)"),
        (dict(x_cols="a,b,a", u_cols="segment"), r"selects column\(s\) \['a'\] more than once"),
        (dict(x_cols="a,segment", u_cols="segment"), r"\['segment'\].*both x and u"),
        (dict(x_cols=" , ", u_cols="segment"), "selects no columns"),
        (dict(x_cols="a", u_cols="segment", parts=("x", "y")), "parts may only name"),
    ],
)
def test_csv_bad_column_choices(tmp_path, frame, kwargs, match):
    path = tmp_path / "d.csv"
    write_csv(path, frame)
    with pytest.raises(ValueError, match=match):
        load_dataset(path, **kwargs)


def test_csv_header_detection_comments_quotes_and_missing_fields(tmp_path):
    # no header: columns are named by index
    (tmp_path / "plain.csv").write_text("1,2,a\n3,4,b\n")
    ds = load_dataset(tmp_path / "plain.csv", u_cols="2")
    np.testing.assert_array_equal(ds.x, [[1, 2], [3, 4]])
    assert list(ds.u) == ["a", "b"]
    # a comment line, a quoted label with a comma, spaces around fields
    (tmp_path / "rich.csv").write_text('# made by hand\nx1, x2 ,label\n 1.5,2,"p,q"\n3,4,r\n')
    ds = load_dataset(tmp_path / "rich.csv", u_cols="label")
    np.testing.assert_array_equal(ds.x, [[1.5, 2], [3, 4]])
    assert list(ds.u) == ["p,q", "r"]
    # an empty field is a missing value, which the estimator names
    (tmp_path / "gap.csv").write_text("a,b\n1,2\n3,\n")
    x = load_dataset(tmp_path / "gap.csv").x
    assert np.isnan(x[1, 1])
    with pytest.raises(ValueError, match="NaN or infinite.*row 1"):
        nica.IVAE(1).fit(x, [0, 1])
    # a missing label is an error of its own
    (tmp_path / "nolabel.csv").write_text("a,lab\n1,p\n2,\n3,q\n")
    with pytest.raises(ValueError, match="u column 'lab'.*1 missing value"):
        load_dataset(tmp_path / "nolabel.csv", u_cols="lab")


@pytest.mark.parametrize(
    "content, match",
    [
        ("", "is empty"),
        ("# only a comment\n\n", "is empty"),
        ("a,b\n", "header row but no data rows"),
        ("a,b\n1,2\n3\n", "rows of different lengths"),
        ("a,b,c\n1,2\n3,4\n", "3 header fields but 2 fields per row"),
    ],
)
def test_broken_csv(tmp_path, content, match):
    (tmp_path / "d.csv").write_text(content)
    with pytest.raises(DataFileError, match=match):
        load_dataset(tmp_path / "d.csv")


def test_read_array_single_column_is_1d_and_labels_are_opt_in(tmp_path):
    (tmp_path / "u.csv").write_text("segment\nx\ny\nx\n")
    assert list(read_array(tmp_path / "u.csv", labels=True)) == ["x", "y", "x"]
    with pytest.raises(TypeError, match="non-numeric.*'segment'.*'x'"):
        read_array(tmp_path / "u.csv")
    (tmp_path / "v.csv").write_text("1\n2\n3\n")
    assert read_array(tmp_path / "v.csv").shape == (3,)


# ---------------------------------------------------------------- parquet
def test_parquet_columns_categories_and_nullable_integers(tmp_path, frame):
    frame = frame.assign(condition=pd.Categorical(frame["condition"]),
                         count=pd.array([1, None] + [3] * 10, dtype="Int64"))
    path = tmp_path / "d.parquet"
    frame.to_parquet(path)
    ds = load_dataset(path, x_cols="a,b,c", u_cols="condition")
    np.testing.assert_allclose(ds.x, frame[["a", "b", "c"]].to_numpy())
    assert list(ds.u[:2]) == ["control", "treated"]
    assert np.isnan(load_dataset(path, x_cols="count", u_cols="segment").x[1, 0])
    with pytest.raises(TypeError, match="non-numeric.*'condition'"):
        load_dataset(path, u_cols="segment", x_cols="a,condition")


def test_parquet_fit_matches_arrays(tmp_path, tiny_data, fast_params):
    frame = pd.DataFrame(tiny_data.x, columns=["x0", "x1", "x2"]).assign(seg=tiny_data.u)
    frame.to_parquet(tmp_path / "d.parquet")
    ds = load_dataset(tmp_path / "d.parquet", u_cols="seg")
    np.testing.assert_array_equal(ds.x, tiny_data.x.astype(np.float64))
    np.testing.assert_array_equal(ds.u, tiny_data.u)


def test_corrupt_parquet(tmp_path):
    (tmp_path / "d.parquet").write_bytes(b"PAR1" + b"\x00" * 40)
    with pytest.raises(DataFileError, match="could not read"):
        load_dataset(tmp_path / "d.parquet")


# ---------------------------------------------------------------- HDF5 and npz
def test_hdf5_datasets_by_name_and_path(tmp_path, rng):
    x, s = rng.normal(size=(20, 3)), rng.normal(size=(20, 2))
    path = tmp_path / "d.h5"
    with h5py.File(path, "w") as fh:
        fh["x"] = x
        fh["meta/segment"] = np.array([b"a", b"b"] * 10)  # bytes labels
        fh["truth"] = s
    ds = load_dataset(path, u_key="meta/segment", s_key="truth")
    np.testing.assert_array_equal(ds.x, x)
    np.testing.assert_array_equal(ds.s, s)
    assert ds.u.dtype.kind == "U" and list(ds.u[:2]) == ["a", "b"]
    assert load_dataset(path).u is None  # u is optional: "u" is not there
    assert sorted(array_names(path)) == ["meta/segment", "truth", "x"]
    with pytest.raises(DataFileError, match=r"no dataset 'X'.*\['meta/segment', 'truth', 'x'\]"):
        load_dataset(path, x_key="X")
    with pytest.raises(DataFileError, match="no dataset 'meta'"):
        load_dataset(path, x_key="meta")  # a group, not a dataset


def test_hdf5_text_labels_and_compound_arrays(tmp_path):
    path = tmp_path / "d.hdf5"
    with h5py.File(path, "w") as fh:
        fh["x"] = np.zeros((3, 2))
        fh["u"] = np.array(["ctrl", "drug", "ctrl"], dtype=h5py.string_dtype())
        fh["rec"] = np.zeros(3, dtype=[("a", "f8"), ("b", "i4")])
    assert list(load_dataset(path).u) == ["ctrl", "drug", "ctrl"]
    with pytest.raises(DataFileError, match="compound"):
        load_dataset(path, x_key="rec")


def test_npz_object_array_is_never_unpickled(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.array([[1.0, 2.0]] * 3), u=np.array([{"a": 1}] * 3, dtype=object))
    with pytest.raises(DataFileError, match="object array.*never loads"):
        load_dataset(tmp_path / "d.npz")


def test_column_options_on_keyed_and_npy_files(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((3, 2)))
    np.save(tmp_path / "x.npy", np.zeros((3, 2)))
    with pytest.raises(DataFileError, match=r"x_cols \(--x-cols\) can only choose columns.*--x-key"):
        load_dataset(tmp_path / "d.npz", x_cols="0")
    with pytest.raises(DataFileError, match="holds x alone"):
        load_dataset(tmp_path / "x.npy", u_cols="1")
    with pytest.raises(DataFileError, match="columns can only choose columns"):
        read_array(tmp_path / "x.npy", columns="0")


def test_u_from_its_own_table_with_a_column_choice(tmp_path, rng):
    np.save(tmp_path / "x.npy", rng.normal(size=(4, 2)))
    (tmp_path / "meta.csv").write_text("id,segment\nc1,a\nc2,b\nc3,a\nc4,b\n")
    ds = load_dataset(tmp_path / "x.npy", u_path=tmp_path / "meta.csv", u_cols="segment")
    assert list(ds.u) == ["a", "b", "a", "b"]
    with pytest.raises(ValueError, match=r"u_cols \(--u-col\): 'batch' is neither.*\['id', 'segment'\]"):
        load_dataset(tmp_path / "x.npy", u_path=tmp_path / "meta.csv", u_cols="batch")


def test_directory_instead_of_a_file(tmp_path):
    with pytest.raises(DataFileError, match="is a directory, not a data file"):
        load_dataset(tmp_path)


# ---------------------------------------------------------------- optional packages
@pytest.mark.parametrize("suffix, module", [(".parquet", "pyarrow.parquet"), (".h5", "h5py"), (".hdf5", "h5py")])
def test_missing_optional_package_names_the_extra(tmp_path, monkeypatch, suffix, module):
    path = (tmp_path / "d").with_suffix(suffix)
    path.write_bytes(b"whatever")
    real_import = tabular.importlib.import_module

    def not_installed(name, *args, **kwargs):
        if name == module:
            raise ModuleNotFoundError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(tabular.importlib, "import_module", not_installed)
    with pytest.raises(MissingDependencyError, match=r'pip install "nica\[formats\]"') as info:
        load_dataset(path)
    assert repr(module) in str(info.value)


# ---------------------------------------------------------------- containers for the estimator
def test_dataframe_to_array_names_non_numeric_columns(frame):
    np.testing.assert_array_equal(to_array(frame[["a", "b"]]), frame[["a", "b"]].to_numpy())
    with pytest.raises(TypeError, match=r"X has non-numeric column\(s\) in the DataFrame: 'condition'"):
        to_array(frame)
    with pytest.raises(TypeError, match="'when'.*datetime64"):
        to_array(frame[["a"]].assign(when=pd.Timestamp("2020-01-01")))
    nullable = pd.DataFrame({"n": pd.array([1, None, 3], dtype="Int64"), "f": [True, False, True]})
    out = to_array(nullable)
    assert np.isnan(out[1, 0]) and out[:, 1].tolist() == [1.0, 0.0, 1.0]


def test_series_u_keeps_labels_and_rejects_missing(frame):
    assert list(to_aux(frame["condition"])[:2]) == ["control", "treated"]
    assert to_aux(frame["segment"]).dtype.kind == "i"
    assert list(to_aux(pd.Series(pd.Categorical(["x", "y"])))) == ["x", "y"]
    with pytest.raises(ValueError, match="1 missing value"):
        to_aux(pd.Series(["x", None, "y"]))
    np.testing.assert_array_equal(to_aux(frame[["a", "b"]]), frame[["a", "b"]].to_numpy())


def test_split_aux_by_column_name(frame):
    x, u = split_aux(frame, "segment")
    assert "segment" not in x.columns and list(u) == list(frame["segment"])
    with pytest.raises(ValueError, match="u='seg' is not a column of X"):
        split_aux(frame, "seg")
    with pytest.raises(TypeError, match="u='seg' is a column name, but X is a ndarray"):
        split_aux(np.zeros((3, 2)), "seg")
    assert split_aux(frame, [1, 2])[1] == [1, 2]


@pytest.mark.numerics
def test_fit_on_a_dataframe_with_u_column_equals_fit_on_arrays(tiny_data, fast_params):
    frame = pd.DataFrame(tiny_data.x, columns=["g1", "g2", "g3"]).assign(batch=[f"b{k}" for k in tiny_data.u])
    labels = frame["batch"].to_numpy()
    from_frame = nica.IVAE(3, **fast_params, random_state=0).fit(frame, u="batch")
    from_arrays = nica.IVAE(3, **fast_params, random_state=0).fit(tiny_data.x, labels)
    z = from_frame.transform(frame, "batch")
    np.testing.assert_array_equal(z, from_arrays.transform(tiny_data.x, labels))
    np.testing.assert_array_equal(z, from_frame.transform(frame.drop(columns="batch"), frame["batch"]))
    # VAE ignores u, but a u column of the DataFrame is still not a feature
    vae = nica.VAE(3, **fast_params, random_state=0).fit(frame, u="batch")
    assert vae.n_features_in_ == 3 and vae.transform(frame, "batch").shape == (500, 3)


@pytest.mark.numerics
def test_fit_on_anndata_with_sparse_x_and_obs_column(tiny_data, fast_params):
    import scipy.sparse as sp

    obs = pd.DataFrame({"segment": pd.Categorical([f"s{k}" for k in tiny_data.u])},
                       index=[f"cell{i}" for i in range(500)])
    adata = anndata.AnnData(X=sp.csr_matrix(tiny_data.x), obs=obs)
    labels = obs["segment"].astype(str).to_numpy()
    model = nica.IVAE(3, **fast_params, random_state=0).fit(adata, u="segment")
    reference = nica.IVAE(3, **fast_params, random_state=0).fit(tiny_data.x, labels)
    np.testing.assert_array_equal(model.transform(adata, "segment"), reference.transform(tiny_data.x, labels))
    dense = anndata.AnnData(X=tiny_data.x, obs=obs)
    np.testing.assert_array_equal(model.transform(dense, "segment"), model.transform(adata, "segment"))
    with pytest.raises(ValueError, match=r"u='batch' is not a column of adata.obs; its columns are \['segment'\]"):
        model.transform(adata, "batch")


def test_table_aux_with_several_columns_is_numeric():
    table = Table(["t", "v"], [np.array(["1", "2"]), np.array(["0.5", "x"])], "f.csv")
    np.testing.assert_array_equal(table.aux([0]), [1, 2])
    with pytest.raises(TypeError, match="'v' \\(holds text such as 'x'\\)"):
        table.aux([0, 1])


def test_require_names_the_extra():
    with pytest.raises(MissingDependencyError, match=r'pip install "nica\[formats\]"'):
        tabular.require("nica_no_such_module", "reading a test file")


@pytest.mark.parametrize(
    "content, n_rows",
    [
        ("segment\nx\ny\nx\n", 3),  # a name above repeating labels: a header
        ("x\ny\nx\ny\n", 4),  # the first label recurs: no header
        ("id,segment\nc1,a\nc2,b\nc3,a\n", 3),
        ("1,a\n2,b\n", 2),
    ],
)
def test_csv_header_sniffing_of_text_columns(tmp_path, content, n_rows):
    (tmp_path / "u.csv").write_text(content)
    assert len(read_array(tmp_path / "u.csv", columns=[-1], labels=True)) == n_rows
