"""`upload:KEY[?size=S&color=C]`: pictures a student uploaded, stored by vae.student_data under the uploads folder.

KEY is a hash of the pictures' content, so a model trained on them finds them again on every
page and after a restart; they are read like a `folder:` set (vae.datasets.folder).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from vae.datasets.folder import read_image_folder
from vae.datasets.names import FolderRequest, canonical_upload_argument, parse_upload_argument
from vae.datasets.registry import DataError, Dataset, default_data_dir, register

UPLOADS_ENV = "LATENT_LAB_UPLOADS"  # where uploads are stored; default <data folder>/uploads


def uploads_root() -> Path:
    """$LATENT_LAB_UPLOADS, else `uploads/` in the data folder (outside the code's git tree)."""
    return Path(os.environ.get(UPLOADS_ENV) or default_data_dir() / "uploads").expanduser()


def load_upload(argument: str | None, data_dir: str | None = None) -> Dataset:
    """The stored upload `KEY?size=S&color=C` as a Dataset (10% of each label held out, seed 0)."""
    key, size, color = parse_upload_argument(argument)
    folder = uploads_root() / key
    if not folder.is_dir():
        raise DataError("These uploaded pictures are no longer on this server (an upload no model uses is removed "
                        "after a while). Upload them again on the Train page.")
    with contextlib.suppress(OSError):
        os.utime(folder)  # in use: not pruned while models are trained or shown from it
    name = "upload:" + canonical_upload_argument(argument)
    try:
        return read_image_folder(FolderRequest(folder, size, color), name)
    except DataError as error:  # its messages name the server path; a student sees "the upload"
        raise DataError(str(error).replace(str(folder), "the upload")) from None


register("upload", "Your own pictures (upload a folder or a zip)",
         "Pictures a student uploaded; their licence is theirs to check", embedded=True, prefix=True,
         canonical=canonical_upload_argument)(load_upload)
