"""torchvision's downloadable sets: `mnist`, `fashion-mnist`, `kmnist`, `cifar10`.

Read by torchvision's own dataset classes from the data folder (`default_data_dir`), downloaded
into it first when the network allows (vae.downloads), otherwise read from files the user puts there.
"""

from __future__ import annotations

import os
import socket
import threading
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vae.datasets.embedded import DIGIT_NAMES
from vae.datasets.registry import DataError, Dataset, default_data_dir, register
from vae.downloads import DownloadError, DownloadStopped, fetch, torchvision_files

OFFLINE_ENV = "LATENT_LAB_OFFLINE"  # "1": never try to download
PROBE_SECONDS = 5.0  # how long the network check may take before the data set counts as offline


def downloads_allowed() -> bool:
    """False when $LATENT_LAB_OFFLINE is set to anything but "", "0" or "false"."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("", "0", "false", "no")


def _reachable(url: str, seconds: float = PROBE_SECONDS) -> str | None:
    """None if a TCP connection to the URL's host opens within `seconds`, else the reason it did not.

    A quick first check (in a thread, so the app never waits longer), so that an offline machine
    hears "no network" at once; the download itself is bounded too (vae.downloads).
    """
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    outcome: list[str | None] = []

    def probe() -> None:
        try:
            socket.create_connection((parts.hostname, port), timeout=seconds).close()
            outcome.append(None)
        except OSError as error:
            outcome.append(f"{parts.hostname}: {error.strerror or error}")

    worker = threading.Thread(target=probe, daemon=True)
    worker.start()
    worker.join(seconds)
    return outcome[0] if outcome else f"{parts.hostname} did not answer within {seconds:.0f} s"


@dataclass(frozen=True)
class TorchvisionSet:
    name: str
    title: str  # as the user knows it
    class_name: str  # in torchvision.datasets
    folder: str  # under the data folder, where torchvision reads the files
    files: tuple[str, ...]  # the files torchvision reads there
    origin: str  # where the user can fetch them by hand
    label_names: tuple[str, ...]
    hint: str  # how the origin's downloads become `files`

    def classes(self):
        import torchvision.datasets

        return getattr(torchvision.datasets, self.class_name)


IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
IDX_HINT = "uncompressed IDX files: gunzip the .gz downloads"
TORCHVISION_SETS = {
    "mnist": TorchvisionSet("mnist", "MNIST", "MNIST", "MNIST/raw", IDX_FILES,
                            "https://ossci-datasets.s3.amazonaws.com/mnist/", DIGIT_NAMES, IDX_HINT),
    "fashion-mnist": TorchvisionSet("fashion-mnist", "Fashion-MNIST", "FashionMNIST", "FashionMNIST/raw", IDX_FILES,
                                    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                                    ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                                     "Sneaker", "Bag", "Ankle boot"), IDX_HINT),
    "kmnist": TorchvisionSet("kmnist", "Kuzushiji-MNIST", "KMNIST", "KMNIST/raw", IDX_FILES,
                             "http://codh.rois.ac.jp/kmnist/dataset/kmnist/",
                             ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"), IDX_HINT),
    "cifar10": TorchvisionSet("cifar10", "CIFAR-10", "CIFAR10", "cifar-10-batches-py",
                              ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5",
                               "test_batch", "batches.meta"),
                              "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                              ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                               "ship", "truck"), "the python version's files: unpack cifar-10-python.tar.gz"),
}


def _download_url(spec: TorchvisionSet) -> str:
    """The first URL torchvision's class downloads from, to check the network against."""
    classes = spec.classes()
    if hasattr(classes, "mirrors"):
        return classes.mirrors[0] + classes.resources[0][0]
    return classes.url


def missing_files_message(spec: TorchvisionSet, root: Path, reason: str) -> str:
    """The one message shown when a downloadable set's files are neither there nor downloadable."""
    folder = root / spec.folder
    missing = [name for name in spec.files if not (folder / name).is_file()]
    return (f"{spec.title} is not in {folder} and {reason}. "
            f"Put these files in that folder ({spec.hint} from {spec.origin}): {', '.join(missing)}.")


def _read_torchvision(spec: TorchvisionSet, root: Path, download: bool):
    """(train, test) torchvision dataset objects, read by torchvision's own class.

    CIFAR-10's class unpickles its batch files; it first checks each file's MD5 against the
    official one, so only the genuine files are ever unpickled.
    """
    classes = spec.classes()
    return classes(str(root), train=True, download=download), classes(str(root), train=False, download=False)


def _download(spec: TorchvisionSet, root: Path) -> None:
    """Fetch the set's files with a bounded download (vae.downloads), then let torchvision unpack them.

    torchvision's own downloader has no timeout, so it is never called: a mirror that connects and
    stays silent would hang the run. The unpacked files land where torchvision's class reads them.
    """
    from torchvision.datasets.utils import extract_archive

    for remote in torchvision_files(spec.classes(), root):
        extract_archive(str(fetch(remote)), str(remote.folder))


def _to_images(data) -> torch.Tensor:
    """torchvision's uint8 pixels, (N, H, W) or (N, H, W, 3), as float32 (N, C, H, W) in [0, 1]."""
    pixels = torch.as_tensor(np.asarray(data))
    pixels = pixels[:, None] if pixels.ndim == 3 else pixels.permute(0, 3, 1, 2)
    return pixels.contiguous().float().div_(255.0)


def load_torchvision(name: str, data_dir: str | None = None) -> Dataset:
    """One of torchvision's sets with its official train/test split, from `data_dir` (default: default_data_dir()).

    Reads the files when they are there; otherwise downloads them when downloads are allowed and
    the network answers; otherwise raises DataError naming the folder and the missing files.
    """
    spec = TORCHVISION_SETS[name]
    root = Path(data_dir).expanduser() if data_dir else default_data_dir()
    if root.exists() and not root.is_dir():
        raise DataError(f"The data folder {root} is a file, not a folder.")
    folder = root / spec.folder
    try:
        if any(not (folder / file).is_file() for file in spec.files):
            if not downloads_allowed():
                raise DataError(missing_files_message(spec, root, f"downloading is switched off ({OFFLINE_ENV}=1)"))
            unreachable = _reachable(_download_url(spec))
            if unreachable:
                raise DataError(missing_files_message(spec, root,
                                                      f"could not be downloaded (no network: {unreachable})"))
            try:
                _download(spec, root)
            except DownloadStopped as error:
                raise DataError(f"{error} {spec.title} is not complete in {root}; nothing was trained.") from None
            except (DownloadError, RuntimeError, OSError) as error:
                first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
                raise DataError(missing_files_message(spec, root, f"the download failed ({first_line})")) from None
        train, test = _read_torchvision(spec, root, download=False)
        train_images, test_images = _to_images(train.data), _to_images(test.data)
        train_labels = torch.as_tensor(np.asarray(train.targets), dtype=torch.int64)
        test_labels = torch.as_tensor(np.asarray(test.targets), dtype=torch.int64)
    except DataError:
        raise
    except PermissionError as error:
        raise DataError(f"Cannot read {spec.title} in {folder}: permission denied ({error.filename}).") from None
    except Exception as error:  # damaged files: checksums (CIFAR-10) or whatever the IDX parser hits
        raise DataError(f"The {spec.title} files in {folder} could not be read ({type(error).__name__}: {error}). "
                        "They may be damaged or not the official ones: delete them to download again, or replace "
                        "them.") from None
    if len(train_images) == 0 or len(test_images) == 0:
        raise DataError(f"The {spec.title} files in {root / spec.folder} hold no images.")
    if (int(max(train_labels.max(), test_labels.max())) >= len(spec.label_names)
            or int(min(train_labels.min(), test_labels.min())) < 0):
        raise DataError(f"The {spec.title} files in {root / spec.folder} have labels outside "
                        f"0..{len(spec.label_names) - 1}.")
    return Dataset(name=name, train_images=train_images, test_images=test_images, train_labels=train_labels,
                   test_labels=test_labels, label_names=spec.label_names)


def _register_torchvision(name: str, title: str, source: str) -> None:
    register(name, title, source, embedded=False)(lambda data_dir=None: load_torchvision(name, data_dir))


_register_torchvision("mnist", "MNIST, 70,000 digits (download)",
                      "torchvision.datasets.MNIST; Y. LeCun, C. Cortes, C. Burges; the original site states no "
                      "licence, it is commonly given as CC BY-SA 3.0")
_register_torchvision("fashion-mnist", "Fashion-MNIST, 70,000 clothes (download)",
                      "torchvision.datasets.FashionMNIST; Zalando Research (Xiao, Rasul & Vollgraf 2017); MIT licence")
_register_torchvision("kmnist", "Kuzushiji-MNIST, 70,000 cursive Japanese characters (download)",
                      "torchvision.datasets.KMNIST; ROIS-DS CODH / NIJL (Clanuwat et al. 2018); CC BY-SA 4.0")
_register_torchvision("cifar10", "CIFAR-10, 60,000 colour photos 32x32 (download)",
                      "torchvision.datasets.CIFAR10; A. Krizhevsky, V. Nair, G. Hinton (2009); no licence stated, "
                      "the authors ask for a citation of Krizhevsky's 2009 tech report")
