"""The MNIST / Fashion-MNIST downloaders, tested with no network at all.

Every test runs with ``socket`` blocked (any attempt to open a connection or resolve
a name is recorded and fails), and with :data:`qkit.data.download.fetch` replaced by
a fake server that hands out small IDX files the tests generate, whose checksums
replace the real ones in :data:`qkit.data.download.CHECKSUMS`.
"""

from __future__ import annotations

import gzip
import hashlib
import socket
import struct
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch

import qkit.data
from qkit.data import download as dl

pytestmark = pytest.mark.lesson04

N = {"train": 5, "test": 3}  # images per generated split
FILES = {
    split: (f"{p}-images-idx3-ubyte.gz", f"{p}-labels-idx1-ubyte.gz")
    for split, p in (("train", "train"), ("test", "t10k"))
}
LOADERS = {"mnist": qkit.data.mnist, "fashion_mnist": qkit.data.fashion_mnist}


def idx_bytes(arr: np.ndarray, code: int = 0x08) -> bytes:
    """An uncompressed IDX file holding ``arr`` (big-endian, as the format says)."""
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def checksums(blob: bytes) -> tuple[str, str, int]:
    return hashlib.sha256(blob).hexdigest(), hashlib.md5(blob).hexdigest(), len(blob)


class NetworkBlocked(OSError):
    pass


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Make any real socket use fail (and record it); fail the test if one was tried."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise NetworkBlocked("network access is blocked in the tests")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.delenv("QKIT_DATA", raising=False)
    yield attempts
    assert attempts == [], f"a test tried to open a real network connection: {attempts}"


class FakeServer:
    """Serves generated files by name; ``fail`` / ``corrupt`` hold URL prefixes to misbehave."""

    def __init__(self):
        self.blobs: dict[str, dict[str, bytes]] = {}  # data set -> file name -> gz bytes
        self.arrays: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
        self.urls: list[str] = []
        self.fail: tuple[str, ...] = ()
        self.corrupt: tuple[str, ...] = ()

    def __call__(self, url, out):
        self.urls.append(url)
        if url.startswith(self.fail):
            out.write(b"half a fi")  # a partial write before the connection dies
            raise URLError("[Errno -3] Temporary failure in name resolution")
        name = next(n for n in dl.MIRRORS if any(url.startswith(m) for m in dl.MIRRORS[n]))
        blob = self.blobs[name][url.rsplit("/", 1)[1]]
        out.write(blob[: len(blob) // 2] if url.startswith(self.corrupt) else blob)


@pytest.fixture
def server(monkeypatch):
    """Generate both data sets, register their checksums, and serve them."""
    srv = FakeServer()
    rng = np.random.default_rng(0)
    for name in dl.MIRRORS:
        srv.blobs[name], srv.arrays[name] = {}, {}
        for split, (img_file, lbl_file) in FILES.items():
            images = rng.integers(0, 256, size=(N[split], 28, 28), dtype=np.uint8)
            images[0, 0, 0], images[0, 0, 1] = 0, 255  # the ends of the byte range
            labels = rng.integers(0, 10, size=N[split], dtype=np.uint8)
            srv.arrays[name][split] = (images, labels)
            srv.blobs[name][img_file] = gzip.compress(idx_bytes(images))
            srv.blobs[name][lbl_file] = gzip.compress(idx_bytes(labels))
        monkeypatch.setitem(dl.CHECKSUMS, name, {f: checksums(b) for f, b in srv.blobs[name].items()})
    monkeypatch.setattr(dl, "fetch", srv)
    return srv


def place(root: Path, name: str, filename: str, blob: bytes, register: bool = True, monkeypatch=None):
    """Put ``blob`` in the cache as ``filename`` (optionally registering its checksums)."""
    path = root / name / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(blob)
    if register:
        monkeypatch.setitem(dl.CHECKSUMS[name], filename, checksums(blob))
    return path


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".part")]


# --- parsing -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
@pytest.mark.parametrize("split", ["train", "test"])
def test_shapes_dtypes_and_scaling(server, tmp_path, name, split):
    X, y = LOADERS[name](split, root=tmp_path)
    images, labels = server.arrays[name][split]
    n = N[split]
    assert X.shape == (n, 1, 28, 28) and X.dtype == torch.float32
    assert y.shape == (n,) and y.dtype == torch.int64
    assert float(X.min()) == 0.0 and float(X.max()) == 1.0
    assert torch.equal(torch.round(X * 255).to(torch.uint8), torch.from_numpy(images).unsqueeze(1))
    assert torch.equal(y, torch.from_numpy(labels.astype(np.int64)))
    assert sorted(u.rsplit("/", 1)[1] for u in server.urls) == sorted(FILES[split])
    assert all(u.startswith(dl.MIRRORS[name][0]) for u in server.urls)  # first mirror first


def test_default_split_is_train(server, tmp_path):
    X, _ = qkit.data.mnist(root=tmp_path)
    assert len(X) == N["train"]


def test_read_idx_wider_types_and_byte_order():
    a = np.array([[1, -2], [300000, 7]], dtype=np.int32)
    out = dl.read_idx(idx_bytes(a, code=0x0C))
    assert out.dtype == np.int32 and out.dtype.isnative and np.array_equal(out, a)
    f = np.array([0.5, -1.25], dtype=np.float64)
    assert np.array_equal(dl.read_idx(idx_bytes(f, code=0x0E)), f)


@pytest.mark.parametrize("raw, match", [
    (b"\x00\x00", "header of at least 4 bytes"),
    (b"\x1f\x8b\x08\x01" + bytes(8), "magic number starting with 0x0000"),
    (bytes([0, 0, 0x07, 1, 0, 0, 0, 1, 5]), "type code"),
    (bytes([0, 0, 0x08, 3, 0, 0, 0, 1]), "dimension"),
    (bytes([0, 0, 0x08, 1, 0, 0, 0, 4, 1, 2, 3]), "expected 4 values"),
    (bytes([0, 0, 0x08, 1, 0, 0, 0, 2, 1, 2, 3]), "expected 2 values"),  # trailing junk
])
def test_read_idx_rejects_malformed(raw, match):
    with pytest.raises(ValueError, match=match):
        dl.read_idx(raw)


def _malformed(kind: str) -> tuple[bytes, bytes]:
    """(images gz, labels gz) for the train split, broken in one way."""
    images = np.zeros((N["train"], 28, 28), np.uint8)
    labels = np.zeros(N["train"], np.uint8)
    img, lbl = idx_bytes(images), idx_bytes(labels)
    if kind == "truncated idx":
        img = img[:-100]
    elif kind == "truncated gzip":
        return gzip.compress(img)[:-20], gzip.compress(lbl)
    elif kind == "not gzip":
        return img, gzip.compress(lbl)
    elif kind == "wrong image size":
        img = idx_bytes(np.zeros((N["train"], 27, 28), np.uint8))
    elif kind == "wrong image dtype":
        img = idx_bytes(images.astype(np.int32), code=0x0C)
    elif kind == "count mismatch":
        lbl = idx_bytes(np.zeros(N["train"] + 1, np.uint8))
    elif kind == "label out of range":
        lbl = idx_bytes(np.full(N["train"], 10, np.uint8))
    return gzip.compress(img), gzip.compress(lbl)


@pytest.mark.parametrize("kind, match", [
    ("truncated idx", "expected .* values"),
    ("truncated gzip", "gzip-compressed IDX"),
    ("not gzip", "gzip-compressed IDX"),
    ("wrong image size", r"shape \(n, 28, 28\)"),
    ("wrong image dtype", "uint8 images"),
    ("count mismatch", "as many labels as images"),
    ("label out of range", "labels 0..9"),
])
def test_malformed_files_raise_value_error(server, tmp_path, monkeypatch, kind, match):
    img, lbl = _malformed(kind)
    place(tmp_path, "mnist", FILES["train"][0], img, monkeypatch=monkeypatch)  # checksums match:
    place(tmp_path, "mnist", FILES["train"][1], lbl, monkeypatch=monkeypatch)  # parsing must catch it
    with pytest.raises(ValueError, match=match):
        qkit.data.mnist("train", root=tmp_path, download=False)
    assert server.urls == []


# --- caching -----------------------------------------------------------------------


def test_second_call_uses_the_cache(server, tmp_path):
    X1, y1 = qkit.data.fashion_mnist("test", root=tmp_path)
    assert len(server.urls) == 2
    for f in FILES["test"]:
        assert (tmp_path / "fashion_mnist" / f).read_bytes() == server.blobs["fashion_mnist"][f]
    assert leftovers(tmp_path) == []
    X2, y2 = qkit.data.fashion_mnist("test", root=tmp_path)
    assert len(server.urls) == 2  # no new fetch
    X3, _ = qkit.data.fashion_mnist("test", root=tmp_path, download=False)
    assert len(server.urls) == 2
    assert torch.equal(X1, X2) and torch.equal(y1, y2) and torch.equal(X1, X3)


def test_data_sets_are_cached_apart(server, tmp_path):
    qkit.data.mnist("test", root=tmp_path)
    qkit.data.fashion_mnist("test", root=tmp_path)
    assert len(server.urls) == 4  # same file names, different folders: no clash
    assert {p.parent.name for p in tmp_path.rglob("*.gz")} == {"mnist", "fashion_mnist"}


def test_manually_placed_file_is_used_offline(server, tmp_path):
    for f in FILES["test"]:  # a learner copies the real files in by hand
        place(tmp_path, "mnist", f, server.blobs["mnist"][f], register=False)
    X, _ = qkit.data.mnist("test", root=tmp_path, download=False)
    assert len(X) == N["test"] and server.urls == []


def test_root_from_qkit_data_env(server, tmp_path, monkeypatch):
    monkeypatch.setenv("QKIT_DATA", str(tmp_path / "from_env"))
    qkit.data.mnist("test")
    assert sorted(p.name for p in (tmp_path / "from_env" / "mnist").iterdir()) == sorted(FILES["test"])


def test_default_root_without_env(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert dl.default_root() == tmp_path / ".cache" / "qkit"
    monkeypatch.setenv("QKIT_DATA", "~/elsewhere")
    assert dl.default_root() == tmp_path / "elsewhere"


# --- checksums ---------------------------------------------------------------------


def test_corrupt_download_is_deleted(server, tmp_path):
    server.corrupt = dl.MIRRORS["mnist"]  # every mirror serves half the file
    with pytest.raises(ValueError, match="sha256 mismatch") as err:
        qkit.data.mnist("train", root=tmp_path)
    assert "was deleted" in str(err.value) and FILES["train"][0] in str(err.value)
    assert len(server.urls) == len(dl.MIRRORS["mnist"])  # each mirror tried once
    assert not (tmp_path / "mnist" / FILES["train"][0]).exists()
    assert leftovers(tmp_path) == []


def test_bad_mirror_falls_back_to_the_next(server, tmp_path):
    server.corrupt = dl.MIRRORS["fashion_mnist"][:1]
    X, _ = qkit.data.fashion_mnist("test", root=tmp_path)
    assert len(X) == N["test"]
    assert [u.startswith(dl.MIRRORS["fashion_mnist"][0]) for u in server.urls] == [True, False, True, False]
    assert leftovers(tmp_path) == []


def test_corrupt_cached_file_raises(server, tmp_path):
    f = FILES["train"][0]
    path = place(tmp_path, "mnist", f, server.blobs["mnist"][f][:-10], register=False)
    with pytest.raises(ValueError, match="sha256 mismatch") as err:
        qkit.data.mnist("train", root=tmp_path)
    assert str(path) in str(err.value) and "corrupt or truncated" in str(err.value)
    assert server.urls == []  # never silently re-downloaded


def test_md5_is_checked_too(server, tmp_path, monkeypatch):
    f = FILES["test"][1]
    sha, _, size = dl.CHECKSUMS["mnist"][f]
    monkeypatch.setitem(dl.CHECKSUMS["mnist"], f, (sha, "0" * 32, size))
    with pytest.raises(ValueError, match="md5 mismatch"):
        qkit.data.mnist("test", root=tmp_path)


def test_shipped_checksum_table_is_well_formed():
    for name in ("mnist", "fashion_mnist"):
        table = dl.CHECKSUMS[name]
        assert sorted(table) == sorted(FILES["train"] + FILES["test"])
        for sha, md5, size in table.values():
            assert len(sha) == 64 and len(md5) == 32 and int(sha, 16) >= 0 and int(md5, 16) >= 0
            assert size > 0
        assert all(m.endswith("/") for m in dl.MIRRORS[name])


# --- failures ----------------------------------------------------------------------


def test_fetch_failure_is_a_friendly_connection_error(server, tmp_path):
    server.fail = dl.MIRRORS["mnist"]
    with pytest.raises(ConnectionError) as err:
        qkit.data.mnist("test", root=tmp_path)
    msg = str(err.value)
    assert isinstance(err.value, dl.DownloadError)
    assert dl.MIRRORS["mnist"][0] + FILES["test"][0] in msg  # the URL
    assert str(tmp_path / "mnist" / FILES["test"][0]) in msg  # where to put it by hand
    assert "qkit.data.digits" in msg and "offline" in msg
    assert len(server.urls) == len(dl.MIRRORS["mnist"])
    assert list(tmp_path.rglob("*.gz")) == [] and leftovers(tmp_path) == []


def test_real_fetcher_offline_gives_the_friendly_error(tmp_path, no_network):
    """The default urllib fetcher, with sockets blocked, as on a machine with no network."""
    assert dl.fetch is dl.urlopen_fetch
    with pytest.raises(dl.DownloadError, match="qkit.data.digits"):
        qkit.data.fashion_mnist("test", root=tmp_path)
    assert len(no_network) >= 1  # it did try (and was refused) ...
    no_network.clear()  # ... which is the point of this one test
    assert leftovers(tmp_path) == []


def test_download_false_and_missing_file(server, tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        qkit.data.fashion_mnist("train", root=tmp_path, download=False)
    assert str(tmp_path / "fashion_mnist" / FILES["train"][0]) in str(err.value)
    assert "download=True" in str(err.value)
    assert server.urls == []


@pytest.mark.parametrize("bad", ["val", "Train", "all", "", None, 0])
def test_bad_split(server, tmp_path, bad):
    with pytest.raises(ValueError, match=r"split must be one of \('train', 'test'\)"):
        qkit.data.mnist(bad, root=tmp_path)
    assert server.urls == []


def test_bad_argument_types(server, tmp_path):
    with pytest.raises(TypeError, match="download must be True or False"):
        qkit.data.mnist("test", root=tmp_path, download="no")
    with pytest.raises(TypeError, match="root must be a str, a path or None"):
        qkit.data.mnist("test", root=3)
    X, _ = qkit.data.mnist("test", root=str(tmp_path))  # a str root is fine
    assert len(X) == N["test"]
