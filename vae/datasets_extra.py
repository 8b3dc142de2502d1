"""More data sets for the registry: generated `shapes`, torchvision's downloadable sets, `folder:PATH`.

Imported at the end of `vae.data`, so every entry here registers itself next to the embedded ones.

- `shapes`: dSprites-like pictures drawn from a full grid of known generative factors, so a
  beta-VAE's latent dimensions can be compared with the ground truth.
- `mnist`, `fashion-mnist`, `kmnist`, `cifar10`: torchvision's own dataset classes, downloaded
  into the data folder when the network allows, otherwise read from files the user puts there.
- `folder:PATH[?size=28|32|64&color=gray|rgb]`: the user's pictures in torchvision's
  ImageFolder layout (a subfolder per label, or a flat folder meaning one label).
"""

from __future__ import annotations

import os
import socket
import re
import threading
import unicodedata
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vae.data import DIGIT_NAMES, DataError, Dataset, register, stratified_split
from vae.downloads import DownloadError, DownloadStopped, fetch, torchvision_files

# ---------------------------------------------------------------- shapes

SHAPE_NAMES = ("square", "ellipse", "triangle", "heart")
SHAPE_SCALES = (0.5, 0.625, 0.75, 0.875, 1.0)  # of the largest size, a disc a quarter of the image wide
SHAPE_ROTATIONS = tuple(float(d) for d in range(0, 360, 36))  # degrees, anticlockwise
SHAPE_POSITIONS = 10  # x and y each take this many positions, one pixel apart at 28x28
SHAPES_SIZE = 28
SHAPES_COUNT = len(SHAPE_NAMES) * len(SHAPE_SCALES) * len(SHAPE_ROTATIONS) * SHAPE_POSITIONS ** 2  # 20,000
SUPERSAMPLING = 4  # samples per pixel along each axis, for anti-aliased edges


@dataclass(frozen=True)
class Shapes:
    """Generated images (N, 1, size, size) float32 in [0, 1] and their factors, each (N,)."""

    images: np.ndarray
    factors: dict[str, np.ndarray]  # shape (int index into SHAPE_NAMES), scale, rotation (degrees), x, y (pixels)


def _inside(shape: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Which points (u, v) lie inside the shape; coordinates in units of its size, v pointing up.

    Every shape fits in the unit disc at every rotation, so nothing is cut off at the image edge.
    """
    if shape == 0:  # square with its corners on the unit circle
        return np.maximum(np.abs(u), np.abs(v)) <= 2 ** -0.5
    if shape == 1:  # ellipse twice as wide as tall, so its rotation shows
        return u ** 2 + (2 * v) ** 2 <= 1
    if shape == 2:  # equilateral triangle inscribed in the unit circle, pointing up; its inradius is 1/2
        inside = np.ones(u.shape, dtype=bool)
        for angle in (np.pi / 2 + np.pi, np.pi / 6, 5 * np.pi / 6):  # outward normals of the three edges
            inside &= u * np.cos(angle) + v * np.sin(angle) <= 0.5
        return inside
    # heart: the curve (x^2 + y^2 - 1)^3 = x^2 y^3, centred and shrunk into the unit disc
    x, y = u * 1.337, v * 1.337 + 0.118
    return (x ** 2 + y ** 2 - 1) ** 3 - x ** 2 * y ** 3 <= 0


def _templates(size: int, radius: float, centre: float) -> np.ndarray:
    """Every (shape, scale, rotation) drawn once at `centre`: (shapes, scales, rotations, size, size) float32."""
    k = SUPERSAMPLING
    # Sample points spread evenly inside each pixel; pixel (row, column) covers [row, row + 1) x [column, column + 1).
    offsets = (np.arange(size * k, dtype=np.float32) + 0.5) / k - centre
    dx = offsets[None, :]  # to the right
    dy = -offsets[:, None]  # up: rows count downwards
    angles = np.deg2rad(np.array(SHAPE_ROTATIONS, dtype=np.float32))[:, None, None]
    scales = np.array(SHAPE_SCALES, dtype=np.float32)[:, None, None, None] * radius
    # Rotating the shape by theta is rotating the sample points by -theta.
    u = (np.cos(angles) * dx + np.sin(angles) * dy)[None] / scales  # (scales, rotations, size*k, size*k)
    v = (-np.sin(angles) * dx + np.cos(angles) * dy)[None] / scales
    drawn = np.stack([_inside(shape, u, v) for shape in range(len(SHAPE_NAMES))])
    # Coverage of each pixel = mean of its k x k samples.
    covered = drawn.reshape(*drawn.shape[:3], size, k, size, k).mean(axis=(4, 6), dtype=np.float32)
    return covered


def generate_shapes(count: int = SHAPES_COUNT, size: int = SHAPES_SIZE, seed: int = 0) -> Shapes:
    """dSprites-like images: every combination of shape, scale, rotation, x and y, in a seeded order.

    With the default count (the size of the grid, 20,000) each combination appears exactly once;
    a smaller count takes a seeded sample without repeats, a larger one repeats the grid as evenly
    as possible. Positions are whole pixels apart, so each picture is one of the
    shapes x scales x rotations templates shifted into place: exactly what drawing it there would give.
    """
    if not (isinstance(count, int) and count >= 1):
        raise ValueError(f"count must be a positive whole number, not {count!r}")
    if size < 16:
        raise ValueError(f"size must be at least 16 pixels, not {size}")
    step = max(1, size // SHAPES_SIZE)  # pixels between neighbouring positions
    half = SHAPE_POSITIONS // 2
    centre = size // 2 + 0.5  # a pixel centre, so that whole-pixel shifts keep samples on the same sub-pixel grid
    templates = _templates(size, radius=size / 4, centre=centre)
    grid = (len(SHAPE_NAMES), len(SHAPE_SCALES), len(SHAPE_ROTATIONS), SHAPE_POSITIONS, SHAPE_POSITIONS)
    total = int(np.prod(grid))
    rng = np.random.default_rng(seed)
    repeats, rest = divmod(count, total)
    combos = np.concatenate([np.tile(np.arange(total), repeats), rng.choice(total, size=rest, replace=False)])
    combos = rng.permutation(combos)
    shape, scale, rotation, xi, yi = np.unravel_index(combos, grid)
    shift_x = (xi - half) * step  # pixels right of the template's centre
    shift_y = (half - 1 - yi) * step  # pixels below it; y counts upwards like the shape coordinates
    pad = half * step
    padded = np.pad(templates.reshape(-1, size, size), ((0, 0), (pad, pad), (pad, pad)))
    template = np.ravel_multi_index((shape, scale, rotation), grid[:3])
    rows = np.arange(size)[None, :, None] - shift_y[:, None, None] + pad
    columns = np.arange(size)[None, None, :] - shift_x[:, None, None] + pad
    images = padded[template[:, None, None], rows, columns][:, None]
    factors = {
        "shape": shape.astype(np.int64),
        "scale": np.asarray(SHAPE_SCALES, dtype=np.float32)[scale],
        "rotation": np.asarray(SHAPE_ROTATIONS, dtype=np.float32)[rotation],
        "x": (centre + shift_x).astype(np.float32),  # column of the shape's centre, in pixels from the left
        "y": (size - centre - shift_y).astype(np.float32),  # row of the centre, in pixels from the bottom
    }
    return Shapes(images, factors)


@register("shapes", "Shapes with known factors (generated)",
          "Generated here (dSprites-like: square, ellipse, triangle, heart x scale x rotation x position); "
          "no external data, nothing to licence beyond this project's code")
def load_shapes(data_dir: str | None = None) -> Dataset:
    """The 20,000 images of `generate_shapes()` (seed 0); 10% of each shape held out as the test split, seed 0.

    Labels are the shape; `train_factors` / `test_factors` hold every factor (shape, scale,
    rotation in degrees, x and y of the centre in pixels).
    """
    shapes = generate_shapes()
    labels = shapes.factors["shape"]
    train, test = stratified_split(labels, lambda n: n // 10, seed=0)
    images = torch.from_numpy(shapes.images)
    factors = {name: torch.from_numpy(values) for name, values in shapes.factors.items()}
    return Dataset(
        name="shapes",
        train_images=images[train].contiguous(), test_images=images[test].contiguous(),
        train_labels=factors["shape"][train].contiguous(), test_labels=factors["shape"][test].contiguous(),
        label_names=SHAPE_NAMES,
        train_factors={name: values[train].contiguous() for name, values in factors.items()},
        test_factors={name: values[test].contiguous() for name, values in factors.items()},
    )


# ---------------------------------------------------------------- torchvision's downloadable sets

OFFLINE_ENV = "LATENT_LAB_OFFLINE"  # "1": never try to download
DATA_DIR_ENV = "LATENT_LAB_DATA"  # overrides the default data folder
PROBE_SECONDS = 5.0  # how long the network check may take before the data set counts as offline


def default_data_dir() -> Path:
    """Where downloadable data sets live unless told otherwise: $LATENT_LAB_DATA, else ~/.cache/latent-lab/data."""
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "latent-lab" / "data"


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
    "mnist": TorchvisionSet("mnist", "MNIST", "MNIST", "MNIST/raw", IDX_FILES, "https://ossci-datasets.s3.amazonaws.com/mnist/",
                            DIGIT_NAMES, IDX_HINT),
    "fashion-mnist": TorchvisionSet("fashion-mnist", "Fashion-MNIST", "FashionMNIST", "FashionMNIST/raw", IDX_FILES,
                                    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                                    ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                                     "Bag", "Ankle boot"), IDX_HINT),
    "kmnist": TorchvisionSet("kmnist", "Kuzushiji-MNIST", "KMNIST", "KMNIST/raw", IDX_FILES,
                             "http://codh.rois.ac.jp/kmnist/dataset/kmnist/",
                             ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"), IDX_HINT),
    "cifar10": TorchvisionSet("cifar10", "CIFAR-10", "CIFAR10", "cifar-10-batches-py",
                              ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch",
                               "batches.meta"),
                              "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                              ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
                              "the python version's files: unpack cifar-10-python.tar.gz"),
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
                raise DataError(missing_files_message(spec, root, f"could not be downloaded (no network: {unreachable})"))
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
                        f"They may be damaged or not the official ones: delete them to download again, or replace them.") from None
    if len(train_images) == 0 or len(test_images) == 0:
        raise DataError(f"The {spec.title} files in {root / spec.folder} hold no images.")
    if int(max(train_labels.max(), test_labels.max())) >= len(spec.label_names) or int(min(train_labels.min(), test_labels.min())) < 0:
        raise DataError(f"The {spec.title} files in {root / spec.folder} have labels outside 0..{len(spec.label_names) - 1}.")
    return Dataset(name=name, train_images=train_images, test_images=test_images, train_labels=train_labels,
                   test_labels=test_labels, label_names=spec.label_names)


def _register_torchvision(name: str, title: str, source: str) -> None:
    register(name, title, source, embedded=False)(lambda data_dir=None: load_torchvision(name, data_dir))


_register_torchvision("mnist", "MNIST, 70,000 digits (download)",
                      "torchvision.datasets.MNIST; Y. LeCun, C. Cortes, C. Burges; the original site states no licence, "
                      "it is commonly given as CC BY-SA 3.0")
_register_torchvision("fashion-mnist", "Fashion-MNIST, 70,000 clothes (download)",
                      "torchvision.datasets.FashionMNIST; Zalando Research (Xiao, Rasul & Vollgraf 2017); MIT licence")
_register_torchvision("kmnist", "Kuzushiji-MNIST, 70,000 cursive Japanese characters (download)",
                      "torchvision.datasets.KMNIST; ROIS-DS CODH / NIJL (Clanuwat et al. 2018); CC BY-SA 4.0")
_register_torchvision("cifar10", "CIFAR-10, 60,000 colour photos 32x32 (download)",
                      "torchvision.datasets.CIFAR10; A. Krizhevsky, V. Nair, G. Hinton (2009); no licence stated, "
                      "the authors ask for a citation of Krizhevsky's 2009 tech report")


# ---------------------------------------------------------------- folder:PATH

FOLDER_SIZES = (28, 32, 64)
FOLDER_COLORS = ("gray", "rgb")
FOLDER_TEST_FRACTION = 0.1
FOLDER_MAX_IMAGES = 100_000  # beyond this the decoded pixels would crowd out memory (64x64 rgb: 4.9 GB)


@dataclass(frozen=True)
class FolderRequest:
    """What `folder:PATH?size=S&color=C` asks for."""

    path: Path
    size: int = 28
    color: str = "gray"

    @property
    def channels(self) -> int:
        return 3 if self.color == "rgb" else 1


_OPTIONS = re.compile(r"[A-Za-z_]+=[^&=]*(&[A-Za-z_]+=[^&=]*)*")  # what can follow the last '?' as options


def parse_folder_argument(argument: str | None) -> FolderRequest:
    """Split `PATH?size=32&color=rgb` (both options optional: 28 and gray) into a FolderRequest.

    The options are what follows the last '?' when it reads as key=value pairs; otherwise the whole
    argument is the path, so a '?' inside a folder's name survives. The path is kept exactly as typed
    (spaces at either end included; `~` expanded); one with control characters (a pasted line break,
    a tab) is refused. Raises DataError with a sentence about what was typed.
    """
    if not argument or not argument.strip():
        raise DataError("Name the image folder after 'folder:', e.g. folder:/home/me/pictures?size=32&color=rgb.")
    path_text, question, query = argument.rpartition("?")
    if not question or not _OPTIONS.fullmatch(query):
        path_text, query = argument, ""
    control = next((c for c in path_text if unicodedata.category(c) in ("Cc", "Cf")), None)
    if control is not None:
        raise DataError(f"The folder path {path_text!r} contains a control character (U+{ord(control):04X}, e.g. a "
                        "pasted line break or tab); type the path again without it.")
    if not path_text.strip():
        raise DataError(f"Name the image folder before the options '?{query}', e.g. folder:/home/me/pictures?{query}.")
    options = {"size": "28", "color": "gray"}
    given = set()
    for pair in query.split("&") if query else []:
        key, _, value = pair.partition("=")
        if key not in options:
            raise DataError(f"Unknown folder option '{key}' in '?{query}' at the end of '{argument}'; the options are size "
                            f"({', '.join(map(str, FOLDER_SIZES))}) and color ({' or '.join(FOLDER_COLORS)}). If the '?' "
                            f"is part of the folder's name, put the options after it: folder:{argument}?size=28.")
        if key in given:
            raise DataError(f"The folder option '{key}' is given twice in '?{query}'.")
        given.add(key)
        options[key] = urllib.parse.unquote_plus(value).strip().lower()
    if options["size"] not in {str(s) for s in FOLDER_SIZES}:
        raise DataError(f"Image size must be one of {', '.join(map(str, FOLDER_SIZES))}, not '{options['size']}'.")
    if options["color"] not in FOLDER_COLORS:
        raise DataError(f"Colour must be 'gray' or 'rgb', not '{options['color']}'.")
    return FolderRequest(Path(path_text).expanduser(), int(options["size"]), options["color"])


# torchvision.datasets.folder.IMG_EXTENSIONS, written out: importing torchvision costs the server
# seconds (12 s on a busy 2-core machine) just to read a list (tests check the two agree).
IMAGE_FOLDER_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def image_extensions() -> tuple[str, ...]:
    """ImageFolder's extensions, plus .gif (its first frame), which Pillow reads too."""
    return (*IMAGE_FOLDER_EXTENSIONS, ".gif")


def folder_dataset_name(path: str | Path, size: int = 28, color: str = "gray") -> str:
    """The registry name for a picture folder, e.g. folder:/home/me/pictures?size=32&color=rgb.

    Default options are left out, except when the path holds a '?': then both are written, so the
    last '?' is always the options' and `parse_folder_argument` gives back the same path.
    """
    keep_all = "?" in str(path)
    options = urllib.parse.urlencode({k: v for k, v in (("size", size), ("color", color))
                                      if keep_all or (k, v) not in (("size", 28), ("color", "gray"))})
    return f"folder:{path}" + (f"?{options}" if options else "")


def canonical_folder_argument(argument: str | None) -> str:
    """`PATH?options` with the path resolved (`~`, `..`, symlinks, a trailing /) and default options left out."""
    request = parse_folder_argument(argument)
    return folder_dataset_name(os.path.realpath(request.path), request.size, request.color).partition(":")[2]


def _is_image_name(path: Path) -> bool:
    return path.suffix.lower() in image_extensions() and not path.name.startswith(".")


def _walk_images(folder: Path) -> list[Path]:
    """Image files under `folder`, at any depth as ImageFolder takes them, in a stable order."""
    images = []
    seen: set[str] = set()  # real paths walked, so a symlink loop cannot walk forever
    for parent, subfolders, files in os.walk(folder, followlinks=True, onerror=_raise):
        real = os.path.realpath(parent)
        if real in seen:
            subfolders[:] = []
            continue
        seen.add(real)
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        for file in sorted(files):
            path = Path(parent) / file
            if _is_image_name(path):
                images.append(path)
    return images


def _raise(error: OSError) -> None:
    raise error


def scan_image_folder(folder: Path) -> tuple[list[tuple[Path, int]], tuple[str, ...], list[str]]:
    """(file, label) pairs, the label names, and notes about what was left out.

    ImageFolder layout: each subfolder is a label holding its images (at any depth). A folder
    with no subfolders holding images is one label named after the folder.
    """
    subfolders = sorted(entry for entry in folder.iterdir() if entry.is_dir() and not entry.name.startswith("."))
    notes: list[str] = []
    samples: list[tuple[Path, int]] = []
    labels: list[str] = []
    empty: list[str] = []
    for subfolder in subfolders:
        files = _walk_images(subfolder)
        if files:
            samples += [(file, len(labels)) for file in files]
            labels.append(subfolder.name)
        else:
            empty.append(subfolder.name)
    top_level = sorted(entry for entry in folder.iterdir() if entry.is_file() and _is_image_name(entry))
    if samples:
        if empty:
            notes.append(f"Subfolders with no images were left out: {', '.join(empty)}.")
        if top_level:
            notes.append(f"{len(top_level)} image(s) directly in {folder} were left out: with label subfolders, "
                         f"images belong inside them.")
        return samples, tuple(labels), notes
    if top_level:
        return [(file, 0) for file in top_level], (folder.name or str(folder),), notes
    everything = [entry for entry in folder.iterdir() if not entry.name.startswith(".")]
    if not everything:
        raise DataError(f"The image folder {folder} is empty. Put images in it: one subfolder per label, "
                        f"or all directly in the folder for a single label.")
    raise DataError(f"No images in {folder} or its subfolders (looked for {', '.join(image_extensions())}).")


def decode_image(path: Path, size: int, channels: int) -> np.ndarray:
    """One picture file as float32 (channels, size, size) in [0, 1]: centre-cropped to a square, then resized.

    Uses the first frame of animations, honours EXIF orientation, lays transparent pictures on
    white, and scales 16-bit and floating-point greyscale by their range rather than clipping.
    Raises OSError, ValueError (or Pillow's errors derived from them) for unreadable files.
    """
    from PIL import Image, ImageOps

    with Image.open(path) as opened:
        opened.seek(0)
        picture = ImageOps.exif_transpose(opened)  # also loads the pixels: truncation shows here
        if picture.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
            values = np.asarray(picture, dtype=np.float64)
            low, high = (0.0, 65535.0) if picture.mode.startswith("I;16") else (float(values.min()), float(values.max()))
            values = (values - low) / (high - low) if high > low else np.zeros_like(values)
            picture = Image.fromarray(np.clip(values * 255 + 0.5, 0, 255).astype(np.uint8), mode="L")
        if picture.mode in ("RGBA", "LA", "PA") or (picture.mode == "P" and "transparency" in picture.info):
            picture = picture.convert("RGBA")
            picture = Image.alpha_composite(Image.new("RGBA", picture.size, (255, 255, 255, 255)), picture)
        picture = picture.convert("RGB" if channels == 3 else "L")
        picture = ImageOps.fit(picture, (size, size), method=Image.Resampling.LANCZOS)
        pixels = np.asarray(picture, dtype=np.float32) / 255.0
    return pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)


def load_folder(argument: str | None, data_dir: str | None = None) -> Dataset:
    """The user's pictures (see parse_folder_argument for the options); 10% of each label held out, seed 0.

    Unreadable files are skipped and counted in the Dataset's `notes`.
    """
    return read_image_folder(parse_folder_argument(argument), "folder:" + argument)


def read_image_folder(request: FolderRequest, name: str) -> Dataset:
    """The pictures under request.path as the Dataset `name` (see load_folder); raises DataError."""
    from PIL import Image

    folder = request.path
    try:
        if not folder.exists():
            if str(folder) != str(folder).strip():  # kept as typed; say so, since a space is invisible
                raise DataError(f"The image folder '{folder}' does not exist (note the space at either end of what was typed).")
            raise DataError(f"The image folder {folder} does not exist.")
        if not folder.is_dir():
            raise DataError(f"{folder} is a file, not a folder; name the folder that holds the images.")
        samples, label_names, notes = scan_image_folder(folder)
    except PermissionError as error:
        raise DataError(f"Cannot read {error.filename or folder}: permission denied.") from None
    except OSError as error:
        raise DataError(f"Cannot read the image folder {folder}: {error.strerror or error}.") from None
    if len(samples) > FOLDER_MAX_IMAGES:
        raise DataError(f"{folder} holds {len(samples):,} images; at most {FOLDER_MAX_IMAGES:,} can be loaded at once.")
    images, labels, unreadable = [], [], []
    for path, label in samples:
        try:
            images.append(decode_image(path, request.size, request.channels))
            labels.append(label)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
            unreadable.append((path, error))
    if unreadable:
        names = ", ".join(str(path.relative_to(folder)) for path, _ in unreadable[:5])
        more = f" and {len(unreadable) - 5} more" if len(unreadable) > 5 else ""
        notes.insert(0, f"Skipped {len(unreadable)} of {len(samples)} image file(s) that could not be read: {names}{more}.")
    if len(images) < 2:
        found = f"only {len(images)} of {len(samples)} could be read" if unreadable else f"it holds {len(images)}"
        raise DataError(f"The image folder {folder} needs at least 2 readable images; {found}."
                        + (f" First problem: {unreadable[0][0].name}: {unreadable[0][1]}" if unreadable else ""))
    labels_array = np.asarray(labels, dtype=np.int64)
    # Every label with 2 or more images keeps at least one in each split.
    train, test = stratified_split(labels_array, lambda n: max(1, round(FOLDER_TEST_FRACTION * n)) if n >= 2 else 0, seed=0)
    if len(test) == 0:  # every label has a single image: hold one out anyway so the test split is not empty
        train, test = train[1:], train[:1]
    pixels = torch.from_numpy(np.stack(images))
    labels_t = torch.from_numpy(labels_array)
    return Dataset(name=name, train_images=pixels[train].contiguous(), test_images=pixels[test].contiguous(),
                   train_labels=labels_t[train].contiguous(), test_labels=labels_t[test].contiguous(),
                   label_names=label_names, notes=" ".join(notes))


register("folder", "Your own image folder",
         "Your pictures, in torchvision's ImageFolder layout; their licence is yours to check",
         embedded=True, prefix=True, canonical=canonical_folder_argument)(load_folder)  # embedded: no download and no data folder, the path is the argument
