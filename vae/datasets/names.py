"""Data set names that carry an argument: parsing and building them, one spelling each.

- `folder:PATH[?size=28|32|64&color=gray|rgb]`: a picture folder on the server.
- `upload:KEY[?size=...&color=...]`: a student's stored upload (vae.student_data), KEY a content hash.
"""

from __future__ import annotations

import os
import re
import unicodedata
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from vae.datasets.registry import DataError

FOLDER_SIZES = (28, 32, 64)
FOLDER_COLORS = ("gray", "rgb")


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
    hint = (" If the '?' is part of the folder's name, put the options after it: "
            f"folder:{argument}?size=28.")
    size, color = _size_and_color(query, f"'?{query}' at the end of '{argument}'", "folder", hint)
    return FolderRequest(Path(path_text).expanduser(), size, color)


def _size_and_color(query: str, where: str, kind: str, unknown_hint: str = "") -> tuple[int, str]:
    """(size, color) of the options `size=S&color=C` (each optional, each at most once; 28 and gray by default)
    of a `folder:` or `upload:` name. `where` places the options in a message; raises DataError."""
    options = {"size": "28", "color": "gray"}
    given = set()
    for pair in filter(None, query.split("&")):
        key, _, value = pair.partition("=")
        if key not in options:
            raise DataError(f"Unknown {kind} option '{shown(key)}' in {where}; the options are size "
                            f"({', '.join(map(str, FOLDER_SIZES))}) and color ({' or '.join(FOLDER_COLORS)})."
                            + unknown_hint)
        if key in given:
            raise DataError(f"The {kind} option '{key}' is given twice in '?{shown(query)}'.")
        given.add(key)
        options[key] = urllib.parse.unquote_plus(value).strip().lower()
    if options["size"] not in {str(s) for s in FOLDER_SIZES}:
        raise DataError(f"Image size must be one of {', '.join(map(str, FOLDER_SIZES))}, "
                        f"not '{shown(options['size'])}'.")
    if options["color"] not in FOLDER_COLORS:
        raise DataError(f"Colour must be 'gray' or 'rgb', not '{shown(options['color'])}'.")
    return int(options["size"]), options["color"]


def _options_text(size: int, color: str, keep_all: bool = False) -> str:
    """`?size=S&color=C` with the defaults (28, gray) left out unless keep_all; '' when nothing is left."""
    options = urllib.parse.urlencode({k: v for k, v in (("size", size), ("color", color))
                                      if keep_all or (k, v) not in (("size", 28), ("color", "gray"))})
    return f"?{options}" if options else ""


def folder_dataset_name(path: str | Path, size: int = 28, color: str = "gray") -> str:
    """The registry name for a picture folder, e.g. folder:/home/me/pictures?size=32&color=rgb.

    Default options are left out, except when the path holds a '?': then both are written, so the
    last '?' is always the options' and `parse_folder_argument` gives back the same path.
    """
    return f"folder:{path}" + _options_text(size, color, keep_all="?" in str(path))


def canonical_folder_argument(argument: str | None) -> str:
    """`PATH?options` with the path resolved (`~`, `..`, symlinks, a trailing /) and default options left out."""
    request = parse_folder_argument(argument)
    return folder_dataset_name(os.path.realpath(request.path), request.size, request.color).partition(":")[2]


KEY_LENGTH = 24  # hex digits of the content hash naming an upload
KEY_PATTERN = re.compile(rf"[0-9a-f]{{{KEY_LENGTH}}}")


def shown(name: str) -> str:
    """Text someone typed or uploaded, printable and at most 80 characters, for a message."""
    clean = "".join(c for c in name if c.isprintable())
    return clean if len(clean) <= 80 else clean[:77] + "..."


def upload_dataset_name(key: str, size: int = 28, color: str = "gray") -> str:
    """The registry name of a stored upload, e.g. upload:<key>?size=32&color=rgb (default options left out)."""
    return f"upload:{key}" + _options_text(size, color)


def upload_key(name: str) -> str | None:
    """The upload key of a data set name `upload:<key>[?options]`, else None."""
    base, _, argument = name.partition(":")
    key = argument.partition("?")[0].strip().lower()
    return key if base == "upload" and KEY_PATTERN.fullmatch(key) else None


def parse_upload_argument(argument: str | None) -> tuple[str, int, str]:
    """(key, size, color) of `KEY[?size=S&color=C]`; raises DataError."""
    key_text, _, query = (argument or "").partition("?")
    key = key_text.strip().lower()
    if not KEY_PATTERN.fullmatch(key):
        raise DataError(f"'upload:{shown(argument or '')}' does not name an "
                        "upload; upload your pictures on the Train page.")
    size, color = _size_and_color(query, f"'upload:{shown(argument or '')}'", "upload")
    return key, size, color


def canonical_upload_argument(argument: str | None) -> str:
    key, size, color = parse_upload_argument(argument)
    return upload_dataset_name(key, size, color).partition(":")[2]
