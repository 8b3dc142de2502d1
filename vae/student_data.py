"""Students' own pictures: uploaded as a folder or a zip, checked, and stored for the models trained on them.

A student never names a server path. The browser sends the files (a folder upload or one zip);
they are checked against limits (files, bytes, pixels), each picture is decoded once by the one
image decoder (`vae.datasets.decode`), and the readable ones are stored under the uploads folder,
named by a hash of their content: `upload:<key>` is then a data set name like any other
(`upload:<key>?size=32&color=rgb`, read by `vae.datasets.uploads`), so a model trained on it
finds its pictures again on every page and after a restart. The layout is `folder:`'s: one subfolder per label, or
a flat folder meaning one label.

Refused with a message, before anything is stored: zip members with absolute paths or `..`,
symlinks, encrypted members, zip bombs (declared sizes over the limit, or compressed more than
MAX_RATIO times), and anything over the limits. An upload no checkpoint uses is removed after
LATENT_LAB_UPLOAD_KEEP_HOURS.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import stat
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterable

from vae.checkpoint_files import folder_lock as _folder_lock  # one lock file per folder, shared with checkpoint saves
from vae.datasets.decode import DECODE_ERRORS, decode_image
from vae.datasets.folder import image_extensions
from vae.datasets.names import KEY_LENGTH, KEY_PATTERN, upload_dataset_name, upload_key
from vae.datasets.names import shown as _shown
from vae.datasets.registry import DataError
from vae.datasets.uploads import uploads_root
from vae.settings import Settings, load_settings

MANIFEST = ".upload.json"  # hidden: never taken for a label folder or a picture
MAX_RATIO = 100  # a zip member compressed more than this many times is treated as a bomb
STALE_STAGING_SECONDS = 3600
_ingesting = threading.BoundedSemaphore(1)  # one upload decoded at a time per server: the other sessions keep a core


class UploadError(DataError):
    """An upload that cannot become a data set; the message is meant for the student."""


@dataclass(frozen=True)
class UploadLimits:
    """What one upload may hold: the operator's `upload_*` settings (`vae.settings`), or these defaults."""

    max_files: int = 2000
    max_megabytes: int = 50  # all files together, unpacked
    max_image_megapixels: int = 12  # one picture
    max_total_megapixels: int = 200  # all pictures together
    keep_hours: float = 24.0  # an upload no checkpoint uses is kept this long

    @classmethod
    def from_settings(cls, settings: Settings) -> "UploadLimits":
        return cls(settings.upload_max_files, settings.upload_max_mb, settings.upload_max_image_mpx,
                   settings.upload_max_total_mpx, settings.upload_keep_hours)

    @classmethod
    def configured(cls) -> "UploadLimits":
        """The limits from the LATENT_LAB_UPLOAD_* variables. Raises SettingsError naming one that is not a
        positive number."""
        return cls.from_settings(load_settings())

    @property
    def max_bytes(self) -> int:
        return self.max_megabytes * 1024 * 1024


@dataclass(frozen=True)
class StudentPictures:
    """One stored upload: its key, labels with their picture counts, and what was left out."""

    key: str
    title: str  # the uploaded folder's or zip's name, as the student knows it
    labels: tuple[tuple[str, int], ...]
    notes: tuple[str, ...] = ()

    @property
    def images(self) -> int:
        return sum(count for _, count in self.labels)

    def dataset_name(self, size: int = 28, color: str = "gray") -> str:
        return upload_dataset_name(self.key, size, color)

    @property
    def summary(self) -> str:
        counts = ", ".join(f"{name} ({count})"
                           for name, count in self.labels[:8]) + (" ..." if len(self.labels) > 8 else "")
        return f"{self.title}: {self.images} pictures, {len(self.labels)} label(s): {counts}"


# ---------------------------------------------------------------- reading what the browser sent

def _safe_parts(name: str) -> list[str]:
    """A relative member path as its parts; UploadError for absolute paths and `..`."""
    text = name.replace("\\", "/")
    if text.startswith("/") or re.match(r"^[A-Za-z]:", text) or "\0" in text:
        raise UploadError(f"'{_shown(name)}' is an absolute path; only relative paths inside the folder are accepted.")
    parts = [part for part in text.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise UploadError(f"'{_shown(name)}' points outside its folder ('..'); the upload was refused.")
    return parts


def read_zip(data: bytes, limits: UploadLimits | None = None) -> list[tuple[str, bytes]]:
    """The files of a zip as (relative path, bytes), refusing bombs, links, absolute and `..` paths.

    Sizes are checked from the directory before any member is inflated, and again while reading
    (a directory can lie). Raises UploadError.
    """
    limits = limits or UploadLimits.configured()
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError):
        raise UploadError("This is not a zip file Python can read.") from None
    with archive:
        members = archive.infolist()
        if len(members) > 2 * limits.max_files + 100:
            raise UploadError(f"The zip holds {len(members):,} entries; at most "
                              f"{limits.max_files:,} pictures are accepted.")
        files = []
        for info in members:
            parts = _safe_parts(info.filename)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise UploadError(f"'{_shown(info.filename)}' is a symbolic link; links are not accepted in an upload.")
            if info.flag_bits & 0x1:
                raise UploadError(f"'{_shown(info.filename)}' is encrypted; upload a zip without a password.")
            if info.is_dir() or not parts:
                continue
            if info.file_size > 2**20 and info.file_size > MAX_RATIO * max(info.compress_size, 1):
                raise UploadError(f"'{_shown(info.filename)}' unpacks "
                                  f"{info.file_size / max(info.compress_size, 1):,.0f} times larger than it is packed; "
                                  "that is a zip bomb, not pictures. The upload was refused.")
            files.append((info, "/".join(parts)))
        declared = sum(info.file_size for info, _ in files)
        if declared > limits.max_bytes:
            raise UploadError(f"The zip unpacks to {declared / 2**20:,.1f} MB; the limit is {limits.max_megabytes} MB.")
        out, total = [], 0
        for info, path in files:
            try:
                with archive.open(info) as member:
                    content = member.read(info.file_size + 1)
            except (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError, EOFError) as error:
                raise UploadError(f"'{_shown(info.filename)}' cannot be unpacked: {error}.") from None
            total += len(content)
            if len(content) > info.file_size or total > limits.max_bytes:
                raise UploadError(
                    f"The zip unpacks to more than its directory says ({_shown(info.filename)}); refused.")
            out.append((path, content))
    return out


# ---------------------------------------------------------------- checking and storing

def store_upload(files: Iterable[tuple[str, bytes]], title: str, *, root: Path | None = None,
                 limits: UploadLimits | None = None, in_use: Iterable[str] = ()) -> StudentPictures:
    """Check the uploaded files (relative path, bytes), decode each picture, store the readable ones.

    Layout as `folder:`: a folder common to every path is the upload itself; below it, one subfolder
    per label, or pictures directly in it (one label, named `title`). Returns the stored upload; the
    same pictures uploaded twice are stored once. `in_use`: data set names whose uploads must not be
    pruned. Raises UploadError (nothing stored).
    """
    limits = limits or UploadLimits.configured()
    root = Path(root) if root is not None else uploads_root()
    entries, title, notes = _pictures_by_label(files, title, limits)
    with _ingesting:
        staging = None
        try:
            staging = _staging(root)
            labels, kept = _decode_into(staging, entries, notes, limits)
            key = _content_key(kept)
            picture = StudentPictures(key, _shown(title) or "pictures", tuple(labels), tuple(notes))
            (staging / MANIFEST).write_text(json.dumps({"title": picture.title, "labels": picture.labels,
                                                        "notes": notes}))
            with _folder_lock(root):
                target = root / key
                if target.is_dir():
                    os.utime(target)  # the same pictures again: keep the first copy, fresh
                else:
                    os.rename(staging, target)
            prune_unused(root, limits.keep_hours * 3600, in_use)
        except OSError as error:  # a full or read-only disk: the student is told, nothing half-stored stays
            raise UploadError(
                f"The server could not store the pictures ({error.strerror or error}); tell your teacher.") from None
        finally:
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)
    return picture


def _pictures_by_label(files, title: str,
                       limits: UploadLimits) -> tuple[dict[str, list[tuple[str, bytes]]], str, list[str]]:
    extensions = image_extensions()
    pictures, notes, skipped, total_bytes = [], [], [], 0
    for name, content in files:
        parts = _safe_parts(name)
        if not parts or any(part.startswith(".") or part == "__MACOSX" for part in parts):
            continue  # hidden and system files (.DS_Store, __MACOSX/) are not pictures
        if PurePosixPath(parts[-1]).suffix.lower() not in extensions:
            skipped.append(parts[-1])
            continue
        pictures.append((parts, content))
        total_bytes += len(content)
        if len(pictures) > limits.max_files:
            raise UploadError(f"More than {limits.max_files:,} pictures; upload at most {limits.max_files:,} at once.")
        if total_bytes > limits.max_bytes:
            raise UploadError(f"The pictures come to more than {limits.max_megabytes} "
                              "MB; that is the limit for one upload.")
    if skipped:
        notes.append(f"{len(skipped)} file(s) that are not pictures were left out: "
                     f"{', '.join(map(_shown, skipped[:5]))}" + (" ..." if len(skipped) > 5 else "") + ".")
    if not pictures:
        raise UploadError(f"No pictures found (looked for {', '.join(extensions)}).")
    while len({tuple(parts[:1]) for parts, _ in pictures}) == 1 and all(len(parts) > 1 for parts, _ in pictures):
        title = pictures[0][0][0]  # one folder holding everything: that folder is the upload
        pictures = [(parts[1:], content) for parts, content in pictures]
    by_label: dict[str, list[tuple[str, bytes]]] = {}
    flat = [(parts, content) for parts, content in pictures if len(parts) == 1]
    nested = [(parts, content) for parts, content in pictures if len(parts) > 1]
    if nested and flat:
        notes.append(f"{len(flat)} picture(s) directly in the folder were left "
                     "out: with label subfolders, pictures belong inside them.")
    for parts, content in nested or flat:
        label = _label_name(parts[0] if nested else title)
        by_label.setdefault(label, []).append(("/".join(parts), content))
    return by_label, title, notes


def _label_name(text: str) -> str:
    clean = "".join(c for c in text if c.isprintable()).strip()[:60]
    return clean if clean and not clean.startswith(".") else f"label {clean}".strip()


def _decode_into(staging: Path, by_label: dict, notes: list[str],
                 limits: UploadLimits) -> tuple[list[tuple[str, int]], list]:
    """Write each picture under staging/<label>/ and decode it once; drop (and note) those that fail."""
    from PIL import Image

    labels, kept, unreadable, total_pixels = [], [], [], 0
    for label in sorted(by_label):
        folder = staging / label
        folder.mkdir()
        count = 0
        for index, (path, content) in enumerate(sorted(by_label[label])):
            file = folder / f"{index:05d}{PurePosixPath(path).suffix.lower()}"
            file.write_bytes(content)
            try:
                with Image.open(file) as opened:  # the header only: size before any pixel is decoded
                    pixels = opened.width * opened.height
                if pixels > limits.max_image_megapixels * 1_000_000:
                    raise UploadError(f"'{_shown(path)}' has {pixels / 1e6:,.1f} million pixels; the limit is "
                                      f"{limits.max_image_megapixels} million per picture.")
                total_pixels += pixels
                if total_pixels > limits.max_total_megapixels * 1_000_000:
                    raise UploadError(f"The pictures hold more than {limits.max_total_megapixels} million pixels "
                                      "together; upload fewer or smaller ones.")
                decode_image(file, 28, 1)
            except UploadError:
                raise
            except DECODE_ERRORS:
                unreadable.append(path)
                file.unlink()
                continue
            kept.append((f"{label}/{file.name}", content))
            count += 1
        if count:
            labels.append((label, count))
        else:
            folder.rmdir()
    if unreadable:
        notes.insert(0, f"{len(unreadable)} file(s) could not be read as pictures and were left out: "
                        f"{', '.join(map(_shown, unreadable[:5]))}" + (" ..." if len(unreadable) > 5 else "") + ".")
    if sum(count for _, count in labels) < 2:
        raise UploadError("At least 2 readable pictures are needed to train on."
                          + (f" {notes[0]}" if unreadable else ""))
    return labels, kept


def _content_key(kept: list[tuple[str, bytes]]) -> str:
    digest = hashlib.sha256()
    for path, content in sorted(kept):
        digest.update(f"{path}\0{hashlib.sha256(content).hexdigest()}\n".encode())
    return digest.hexdigest()[:KEY_LENGTH]


def _staging(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in root.glob(".incoming-*"):  # left by a server killed mid-upload
        with contextlib.suppress(OSError):
            if now - old.stat().st_mtime > STALE_STAGING_SECONDS:
                shutil.rmtree(old, ignore_errors=True)
    staging = root / f".incoming-{uuid.uuid4().hex}"
    staging.mkdir()
    return staging


def prune_unused(root: Path, keep_seconds: float, in_use: Iterable[str] = ()) -> list[str]:
    """Remove uploads untouched for keep_seconds that no name in `in_use` (data set names) refers to."""
    keep = {upload_key(name) for name in in_use}
    removed = []
    now = time.time()
    with _folder_lock(root):
        for folder in root.iterdir():
            if KEY_PATTERN.fullmatch(folder.name) and folder.name not in keep:
                with contextlib.suppress(OSError):
                    if now - folder.stat().st_mtime > keep_seconds:
                        shutil.rmtree(folder)
                        removed.append(folder.name)
    return removed
