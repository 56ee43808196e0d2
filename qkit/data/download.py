"""MNIST and Fashion-MNIST for learners who are online: download once, verify, cache.

Nothing in qkit's lessons, tests or notebooks downloads anything: they use the 8×8
digits that ship with the kit (:func:`qkit.data.digits`). These two functions are
for learners who want the 28×28 data sets on their own machine.

Each data set is four gzipped IDX files (``train-images-idx3-ubyte.gz``,
``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz``,
``t10k-labels-idx1-ubyte.gz``). A file is fetched with ``urllib`` into a temporary
name next to its final place, its SHA-256 and MD5 are checked against
:data:`CHECKSUMS`, and only then is it renamed into the cache, so an interrupted
download never leaves a half file behind. A cached file is checked again on every
call and used without any network access.

The cache is ``root`` if given, else ``$QKIT_DATA``, else ``~/.cache/qkit``; the
files live in ``<root>/mnist/`` and ``<root>/fashion_mnist/``. Offline, put the four
files there by hand.

Sources:
    * MNIST: Y. LeCun, C. Cortes and C. J. C. Burges, *The MNIST database of
      handwritten digits*, http://yann.lecun.com/exdb/mnist/ (the mirrors below
      serve byte-identical copies).
    * Fashion-MNIST: H. Xiao, K. Rasul and R. Vollgraf, *Fashion-MNIST: a Novel
      Image Dataset for Benchmarking Machine Learning Algorithms*, arXiv:1708.07747
      (2017); https://github.com/zalandoresearch/fashion-mnist, MIT licence.

Checksums: the MD5 values are the ones the data sets' publishers list
(Fashion-MNIST's README; for MNIST, torchvision's ``datasets/mnist.py``). The
SHA-256 values and sizes are TensorFlow Datasets' recorded checksums
(``tensorflow_datasets/url_checksums/mnist.txt`` and ``fashion_mnist.txt``). Both
hashes must match.

Example (the IDX reader, on bytes made here):
    >>> import struct
    >>> raw = bytes([0, 0, 0x08, 1]) + struct.pack(">I", 3) + bytes([7, 0, 9])
    >>> read_idx(raw)
    array([7, 0, 9], dtype=uint8)
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import sys
import tempfile
import urllib.request
import zlib
from http.client import HTTPException
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from qkit._checks import check_bool

SPLITS = ("train", "test")
TIMEOUT = 60.0  # seconds without data before a fetch gives up
_CHUNK = 1 << 20
_PREFIX = {"train": "train", "test": "t10k"}

#: Where each data set is served from, tried in order; a file's URL is mirror + name.
MIRRORS: dict[str, tuple[str, ...]] = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",  # PyTorch's mirror
        "https://storage.googleapis.com/cvdf-datasets/mnist/",  # TensorFlow's mirror
        "http://yann.lecun.com/exdb/mnist/",  # the original site (often refuses scripts)
    ),
    "fashion_mnist": (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",  # the authors' bucket
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
}

#: ``CHECKSUMS[data set][file name] = (sha256, md5, size in bytes)`` of each gzip file.
CHECKSUMS: dict[str, dict[str, tuple[str, str, int]]] = {
    "mnist": {
        "train-images-idx3-ubyte.gz": (
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "f68b3c2dcbeaaa9fbdd348bbdeb94873", 9912422),
        "train-labels-idx1-ubyte.gz": (
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "d53e105ee54ea40749a09fcbcd1e9432", 28881),
        "t10k-images-idx3-ubyte.gz": (
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "9fb629c4189551a2d022fa330f9573f3", 1648877),
        "t10k-labels-idx1-ubyte.gz": (
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            "ec29112dd5afa0611ce80d1b7f02629c", 4542),
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte.gz": (
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            "8d4fb7e6c68d591d4c3dfef9ec88bf0d", 26421880),
        "train-labels-idx1-ubyte.gz": (
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            "25c81989df183df01b3e8a0aad5dffbe", 29515),
        "t10k-images-idx3-ubyte.gz": (
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            "bef4ecab320f06d8554ea6380940ec79", 4422102),
        "t10k-labels-idx1-ubyte.gz": (
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
            "bb300cfdad3c16e7a12a480ee83cd310", 5148),
    },
}

_TITLES = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST"}

# IDX type codes (third byte of the magic number) and their big-endian numpy dtypes.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class DownloadError(ConnectionError):
    """A data file could not be fetched from any mirror (offline, host unreachable...)."""


def urlopen_fetch(url: str, out: BinaryIO) -> None:
    """Write the body of ``url`` into the open binary file ``out`` (urllib only).

    This is the default value of :data:`fetch`. Raises ``OSError`` (``URLError``,
    timeouts) or ``http.client.HTTPException`` when the fetch fails.
    """
    request = urllib.request.Request(url, headers={"User-Agent": "qkit (teaching kit)"})
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
        shutil.copyfileobj(response, out, _CHUNK)


#: The function that fetches one URL: ``fetch(url, out)`` writes the body into ``out``.
#: Tests replace it (``monkeypatch.setattr(qkit.data.download, "fetch", fake)``).
fetch = urlopen_fetch


def default_root() -> Path:
    """The cache folder: ``$QKIT_DATA`` if set and non-empty, else ``~/.cache/qkit``."""
    env = os.environ.get("QKIT_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "qkit"


def _hashes(path: Path) -> tuple[str, str]:
    sha, md5 = hashlib.sha256(), hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            sha.update(block)
            md5.update(block)
    return sha.hexdigest(), md5.hexdigest()


def _mismatch(path: Path, expected: tuple[str, str, int]) -> str | None:
    """``None`` if ``path`` has the expected hashes, else a sentence saying what differs."""
    sha, md5 = _hashes(path)
    size = path.stat().st_size
    if sha != expected[0]:
        return (f"sha256 mismatch: expected {expected[0]}, got {sha} "
                f"({size} bytes; expected {expected[2]} bytes)")
    if md5 != expected[1]:
        return f"md5 mismatch: expected {expected[1]}, got {md5}"
    return None


def _download(urls: list[str], path: Path, expected: tuple[str, str, int], what: str) -> None:
    """Fetch the first URL that works into a temporary file, verify it, rename it to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    failures, corrupt = [], []
    for url in urls:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
        tmp = Path(tmp_name)
        try:
            print(f"qkit: downloading {url} -> {path}", file=sys.stderr)
            with os.fdopen(fd, "wb") as out:
                fetch(url, out)
            problem = _mismatch(tmp, expected)
            if problem is None:
                os.replace(tmp, path)  # atomic: the cache never holds a half file
                return
            corrupt.append(f"{url}: {problem}")
        except (OSError, HTTPException) as e:
            failures.append(f"{url}: {type(e).__name__}: {e}")
        finally:
            tmp.unlink(missing_ok=True)
    if corrupt:
        raise ValueError(
            f"the downloaded {what} file {path.name} failed its checksum and was deleted: "
            + "; ".join(corrupt)
            + (f" (other mirrors failed: {'; '.join(failures)})" if failures else "")
            + ". Try again later, or place a good copy at " + str(path)
        )
    raise DownloadError(
        f"could not download the {what} file {path.name}; tried "
        + "; ".join(failures)
        + f". This machine may be offline or the host unreachable. To use the file "
        f"anyway, download it on a connected machine from {urls[0]} and place it at "
        f"{path} (its checksum is verified). For offline work the kit ships the 8×8 "
        f"digits: qkit.data.digits()."
    )


def _cached_file(name: str, filename: str, root: Path, download: bool) -> Path:
    """Path of a verified copy of ``filename`` in the cache, downloading it if allowed."""
    expected = CHECKSUMS[name][filename]
    path = root / name / filename
    urls = [mirror + filename for mirror in MIRRORS[name]]
    what = _TITLES[name]
    if path.is_file():
        problem = _mismatch(path, expected)
        if problem is not None:
            raise ValueError(
                f"the cached {what} file {path} is corrupt or truncated ({problem}); "
                f"delete it and call again to download a fresh copy from {urls[0]}"
            )
        return path
    if not download:
        raise FileNotFoundError(
            f"the {what} file {filename} is not in the cache: expected it at {path}. "
            f"Call with download=True, or fetch it from {urls[0]} and place it there."
        )
    _download(urls, path, expected, what)
    return path


def read_idx(data: bytes, *, name: str = "IDX data") -> np.ndarray:
    """Parse an (uncompressed) IDX file: magic ``0 0 type ndim``, big-endian dims, values.

    Args:
        data: The file's bytes.
        name: What to call the data in error messages (e.g. its file name).

    Returns:
        A numpy array of the stored shape, in native byte order.

    Raises:
        ValueError: A bad magic number, an unknown type code, or a body whose
            length does not match the dimensions.

    Example:
        >>> import struct
        >>> raw = bytes([0, 0, 0x08, 2]) + struct.pack(">II", 2, 3) + bytes(range(6))
        >>> read_idx(raw)
        array([[0, 1, 2],
               [3, 4, 5]], dtype=uint8)
        >>> read_idx(raw[:-1], name="x.idx")
        Traceback (most recent call last):
        ...
        ValueError: x.idx: expected 6 values of 1 byte(s) after the header for shape (2, 3); got 5 bytes
    """
    if len(data) < 4:
        raise ValueError(f"{name}: expected an IDX header of at least 4 bytes; got {len(data)} bytes")
    if data[0] != 0 or data[1] != 0:
        raise ValueError(f"{name}: expected an IDX magic number starting with 0x0000; "
                         f"got 0x{data[:4].hex()} (not an IDX file?)")
    code, ndim = data[2], data[3]
    if code not in _IDX_DTYPES:
        raise ValueError(f"{name}: expected an IDX type code in "
                         f"{[hex(c) for c in _IDX_DTYPES]}; got {hex(code)}")
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise ValueError(f"{name}: expected {ndim} dimension(s) after the magic number "
                         f"and at least one; got a {len(data)}-byte file")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[code])
    count = int(np.prod(shape, dtype=np.int64))
    body = len(data) - header
    if body != count * dtype.itemsize:
        raise ValueError(f"{name}: expected {count} values of {dtype.itemsize} byte(s) after "
                         f"the header for shape {shape}; got {body} bytes")
    arr = np.frombuffer(data, dtype, count=count, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="))


def _read_gz_idx(path: Path) -> np.ndarray:
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        raise ValueError(f"{path}: expected a gzip-compressed IDX file; got an unreadable "
                         f"file ({type(e).__name__}: {e})") from e
    return read_idx(data, name=str(path))


def _load(name: str, split: str, root, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(split, str) or split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}; got {split!r}")
    download = check_bool("download", download)
    if root is None:
        root = default_root()
    elif isinstance(root, (str, os.PathLike)):
        root = Path(root).expanduser()
    else:
        raise TypeError(f"root must be a str, a path or None; got {type(root).__name__} {root!r}")

    prefix = _PREFIX[split]
    img_path = _cached_file(name, f"{prefix}-images-idx3-ubyte.gz", root, download)
    lbl_path = _cached_file(name, f"{prefix}-labels-idx1-ubyte.gz", root, download)
    images, labels = _read_gz_idx(img_path), _read_gz_idx(lbl_path)

    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"{img_path}: expected uint8 images of shape (n, 28, 28); "
                         f"got {images.dtype} {images.shape}")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(f"{lbl_path}: expected uint8 labels of shape (n,); "
                         f"got {labels.dtype} {labels.shape}")
    if len(images) != len(labels):
        raise ValueError(f"expected as many labels as images; got {len(labels)} labels in "
                         f"{lbl_path} and {len(images)} images in {img_path}")
    if labels.size and labels.max() > 9:
        raise ValueError(f"{lbl_path}: expected labels 0..9; got {int(labels.max())}")

    X = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)  # (n, 1, 28, 28)
    y = torch.from_numpy(labels.astype(np.int64))  # (n,)
    return X, y


def mnist(split: str = "train", *, root=None, download: bool = True
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST handwritten digits (LeCun, Cortes, Burges): 60 000 train, 10 000 test.

    Needs the network the first time (unless the files are placed in the cache by
    hand); afterwards the verified cached files are used offline.

    Args:
        split: ``"train"`` (60 000 images) or ``"test"`` (10 000).
        root: The cache folder (files go in ``<root>/mnist/``); default ``$QKIT_DATA``
            or ``~/.cache/qkit``.
        download: Fetch missing files. With ``False`` a missing file raises
            ``FileNotFoundError`` naming where to put it.

    Returns:
        ``(X, y)``: X float32 (n, 1, 28, 28) with pixels in [0, 1] (byte / 255);
        y int64 (n,) with the digits 0–9.

    Raises:
        ValueError: A bad ``split``; a cached or downloaded file whose checksum does
            not match (a bad download is deleted); a malformed IDX file.
        FileNotFoundError: ``download=False`` and a file is not in the cache.
        DownloadError: (a ``ConnectionError``) no mirror could be reached; the
            message names the URL, the cache path, and ``qkit.data.digits``.
    """
    return _load("mnist", split, root, download)


def fashion_mnist(split: str = "train", *, root=None, download: bool = True
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Fashion-MNIST (Xiao, Rasul, Vollgraf 2017, MIT licence): Zalando article images.

    Same format and sizes as :func:`mnist` (60 000 train, 10 000 test, 28×28); the
    classes are 0 T-shirt/top, 1 Trouser, 2 Pullover, 3 Dress, 4 Coat, 5 Sandal,
    6 Shirt, 7 Sneaker, 8 Bag, 9 Ankle boot.

    Args:
        split: ``"train"`` or ``"test"``.
        root: The cache folder (files go in ``<root>/fashion_mnist/``); default
            ``$QKIT_DATA`` or ``~/.cache/qkit``.
        download: Fetch missing files; with ``False`` a missing file raises
            ``FileNotFoundError``.

    Returns:
        ``(X, y)``: X float32 (n, 1, 28, 28) in [0, 1]; y int64 (n,).

    Raises:
        The same as :func:`mnist`.
    """
    return _load("fashion_mnist", split, root, download)
