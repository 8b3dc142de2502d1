"""`folder:PATH[?size=28|32|64&color=gray|rgb]`: the user's pictures in torchvision's ImageFolder layout.

One subfolder per label (its pictures at any depth below it), or a folder of pictures with no
subfolders, meaning one label named after the folder. Every picture goes through the one decoder
(vae.datasets.decode); students' uploaded sets are read by the same `read_image_folder`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from vae.datasets.decode import DECODE_ERRORS, decode_image
from vae.datasets.names import FolderRequest, canonical_folder_argument, parse_folder_argument
from vae.datasets.registry import DataError, Dataset, register, stratified_split

FOLDER_TEST_FRACTION = 0.1
FOLDER_MAX_IMAGES = 100_000  # beyond this the decoded pixels would crowd out memory (64x64 rgb: 4.9 GB)

# torchvision.datasets.folder.IMG_EXTENSIONS, written out: importing torchvision costs the server
# seconds (12 s on a busy 2-core machine) just to read a list (tests check the two agree).
IMAGE_FOLDER_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def image_extensions() -> tuple[str, ...]:
    """ImageFolder's extensions, plus .gif (its first frame), which Pillow reads too."""
    return (*IMAGE_FOLDER_EXTENSIONS, ".gif")


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


def load_folder(argument: str | None, data_dir: str | None = None) -> Dataset:
    """The user's pictures (see parse_folder_argument for the options); 10% of each label held out, seed 0.

    Unreadable files are skipped and counted in the Dataset's `notes`.
    """
    return read_image_folder(parse_folder_argument(argument), "folder:" + argument)


def read_image_folder(request: FolderRequest, name: str) -> Dataset:
    """The pictures under request.path as the Dataset `name` (see load_folder); raises DataError."""
    folder = request.path
    try:
        if not folder.exists():
            if str(folder) != str(folder).strip():  # kept as typed; say so, since a space is invisible
                raise DataError(f"The image folder '{folder}' does not exist (note "
                                "the space at either end of what was typed).")
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
        except DECODE_ERRORS as error:
            unreadable.append((path, error))
    if unreadable:
        names = ", ".join(str(path.relative_to(folder)) for path, _ in unreadable[:5])
        more = f" and {len(unreadable) - 5} more" if len(unreadable) > 5 else ""
        notes.insert(0, f"Skipped {len(unreadable)} of {len(samples)} image "
                        f"file(s) that could not be read: {names}{more}.")
    if len(images) < 2:
        found = f"only {len(images)} of {len(samples)} could be read" if unreadable else f"it holds {len(images)}"
        raise DataError(f"The image folder {folder} needs at least 2 readable images; {found}."
                        + (f" First problem: {unreadable[0][0].name}: {unreadable[0][1]}" if unreadable else ""))
    labels_array = np.asarray(labels, dtype=np.int64)
    # Every label with 2 or more images keeps at least one in each split.
    train, test = stratified_split(labels_array, lambda n: max(1, round(FOLDER_TEST_FRACTION * n)) if n >= 2 else 0,
                                   seed=0)
    if len(test) == 0:  # every label has a single image: hold one out anyway so the test split is not empty
        train, test = train[1:], train[:1]
    pixels = torch.from_numpy(np.stack(images))
    labels_t = torch.from_numpy(labels_array)
    return Dataset(name=name, train_images=pixels[train].contiguous(), test_images=pixels[test].contiguous(),
                   train_labels=labels_t[train].contiguous(), test_labels=labels_t[test].contiguous(),
                   label_names=label_names, notes=" ".join(notes))


register("folder", "Your own image folder",
         "Your pictures, in torchvision's ImageFolder layout; their licence is yours to check",
         # embedded: no download and no data folder, the path is the argument
         embedded=True, prefix=True, canonical=canonical_folder_argument)(load_folder)
