"""Checkpoints: a folder holding `model.safetensors` (weights only) and `config.json`.

Nothing here unpickles: weights are read with safetensors and settings with json. Saving writes
a hidden temporary folder beside the target and renames it into place, so a crash leaves either
the old checkpoint or the new one, whole.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as _dt
import errno
import functools
import fcntl
import importlib.metadata
import json
import os
import platform
import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from typing import TYPE_CHECKING

from safetensors import SafetensorError

from vae import __version__
from vae.checkpoint_schema import ConfigSchemaError, check_settings, parse_config_text
from vae.configs import ModelConfig, ModelConfigError
from vae.text import public_dataset_name

if TYPE_CHECKING:
    import torch

    from vae.models import VAE

# PyTorch is imported where weights are read or written, not at import: listing checkpoints
# (the sidebar, the first page) needs only JSON, and importing torch costs seconds.


def save_file(tensors: dict, path: Path, metadata: dict | None = None) -> None:
    from safetensors.torch import save_file as save_tensors

    save_tensors(tensors, path, metadata=metadata)


def load_file(path: Path, device: str = "cpu") -> dict:
    from safetensors.torch import load_file as load_tensors

    return load_tensors(path, device=device)

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
FORMAT = "latent-lab-checkpoint"
FORMAT_VERSION = 1
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
MAX_CONFIG_BYTES = 8 * 1024 * 1024
REQUIRED_KEYS = ("model", "dataset", "train", "history", "versions")
SHIPPED_ROOT = Path(__file__).resolve().parent.parent / "checkpoints"


def default_root() -> Path:
    """Where the app lists and saves checkpoints: $LATENT_LAB_CHECKPOINTS, else the repo's checkpoints/."""
    return Path(os.environ.get("LATENT_LAB_CHECKPOINTS") or SHIPPED_ROOT)


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be saved or loaded; the message is meant for the user."""


class CheckpointExistsError(CheckpointError):
    """Saving would replace a checkpoint and overwriting was not asked for."""


def validate_name(name: str) -> str:
    """A checkpoint name: letters, digits, '-' and '_' (at most 64, starting with a letter or digit)."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise CheckpointError(
            f"'{name}' is not a valid checkpoint name: use 1-64 letters, digits, '-' or '_', starting with a letter or digit."
        )
    return name


def checkpoint_path(root: str | Path, name: str) -> Path:
    """The folder for `name` under `root`, refusing names and symlinks that lead outside root."""
    root_path = Path(root).resolve()
    path = root_path / validate_name(name)
    if path.is_symlink() or not path.resolve().is_relative_to(root_path):
        raise CheckpointError(f"Checkpoint '{name}' points outside the checkpoints folder; refused.")
    return path


def library_versions() -> dict:
    import numpy
    import safetensors
    import torch

    try:  # read from the package metadata: importing torchvision costs seconds
        torchvision_version = importlib.metadata.version("torchvision")
    except importlib.metadata.PackageNotFoundError:
        torchvision_version = None
    return {
        "latent_lab": __version__, "python": platform.python_version(), "torch": torch.__version__,
        "torchvision": torchvision_version, "safetensors": safetensors.__version__, "numpy": numpy.__version__,
    }


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _exchange(first: Path, second: Path) -> bool:
    """Swap two existing paths in one atomic step (Linux renameat2 with RENAME_EXCHANGE).

    Returns False where the system or file system cannot; the caller then falls back to two
    renames, which `recover_interrupted_saves` repairs if a kill lands between them.
    """
    renameat2 = getattr(_libc(), "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(second))


@functools.lru_cache(maxsize=1)
def _libc():
    try:
        return ctypes.CDLL(None, use_errno=True)
    except (OSError, TypeError):  # no C library to ask (e.g. Windows)
        return None


@contextlib.contextmanager
def _folder_lock(root: Path):
    """Serialise renames in `root` across threads and processes (a killed holder releases it)."""
    with open(root / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def recover_interrupted_saves(root: Path) -> None:
    """Undo what a save killed half-way left behind.

    An overwrite renames the old folder to `.NAME.old-*` before renaming the new one in; if the
    process died between the two, the old checkpoint is put back. Retired copies whose successor
    is in place are removed. A staging folder (`.NAME.tmp-*`) is removed once no save holds its
    lock: a live save keeps it locked, and the lock dies with the process that held it.
    """
    try:
        with _folder_lock(root):
            for staging in root.glob(".*.tmp-*"):
                _remove_if_abandoned(staging)
            for retired in root.glob(".*.old-*"):
                name = retired.name[1:].rsplit(".old-", 1)[0]
                target = root / name
                if target.exists():
                    shutil.rmtree(retired, ignore_errors=True)
                elif NAME_PATTERN.fullmatch(name):
                    os.rename(retired, target)
    except OSError:
        pass  # a read-only folder has nothing we could repair anyway


def _free_name(parent: Path, name: str) -> Path:
    """The first NAME-2, NAME-3, ... with no folder in parent (NAME shortened to keep within 64 characters)."""
    for number in range(2, 10_000):
        suffix = f"-{number}"
        candidate = parent / (name[:64 - len(suffix)] + suffix)
        if not candidate.exists() and not candidate.is_symlink():
            return candidate
    raise CheckpointExistsError(f"A checkpoint named '{name}' already exists, and so do 9,998 variants of the name.")


def _new_staging(parent: Path, name: str) -> tuple[Path, int]:
    """A new hidden staging folder and a descriptor holding its lock (flock on the folder itself)
    for as long as the save runs; close the descriptor to release it."""
    with _folder_lock(parent):  # so recover_interrupted_saves never sees it unlocked
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=parent))
        handle = os.open(staging, os.O_RDONLY)
        fcntl.flock(handle, fcntl.LOCK_EX)
    return staging, handle


def _remove_if_abandoned(staging: Path) -> None:
    try:
        handle = os.open(staging, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return  # a live save holds it
    finally:
        os.close(handle)
    shutil.rmtree(staging, ignore_errors=True)


def _refuse_non_finite(name: str, model: VAE, config: dict) -> None:
    # NaN or inf in a checkpoint would load as a model that draws nothing (weights) or break the
    # JSON (history): refuse both with a sentence instead of json's "Out of range float values".
    import torch

    broken = [key for key, value in model.state_dict().items() if value.is_floating_point() and not torch.isfinite(value).all()]
    if broken:
        raise CheckpointError(f"Could not save '{name}': its weights hold NaN or infinite values ({', '.join(broken[:3])}). Nothing was changed.")
    try:
        json.dumps(config, allow_nan=False)
    except ValueError:
        raise CheckpointError(f"Could not save '{name}': its history holds NaN or infinite numbers. Nothing was changed.") from None


def save_checkpoint(folder: str | Path, model: VAE, *, dataset: dict, train: dict, history: list[dict],
                    extra: dict | None = None, overwrite: bool = False, rename_if_taken: bool = False) -> Path:
    """Write `model` and its story to `folder` atomically; returns the folder.

    dataset: {"name", "image_shape", ...}; train: the training settings; history: one entry per
    epoch (see vae.train). Raises CheckpointExistsError if the folder exists and overwrite is False,
    CheckpointError for anything else (disk full, read-only folder); the old checkpoint is kept.
    rename_if_taken: instead of raising CheckpointExistsError, save under the first free derived
    name (NAME-2, NAME-3, ...; see the returned folder), e.g. when another server saved NAME while
    this run trained: the model is kept rather than thrown away.
    """
    folder = Path(folder)
    name = validate_name(folder.name)
    parent = folder.parent
    config = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "name": name,
        "model": model.config.to_dict(),
        "dataset": {**dataset, "image_shape": list(model.config.image_shape)},
        "train": train, "history": history,
        "final_test": history[-1].get("test") if history and isinstance(history[-1], dict) else None,
        "versions": library_versions(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **(extra or {}),
    }
    if folder.exists() and not overwrite and not rename_if_taken:
        raise CheckpointExistsError(f"A checkpoint named '{name}' already exists; choose another name or confirm overwriting it.")
    _refuse_non_finite(name, model, config)
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging, staging_lock = _new_staging(parent, name)
    except OSError as error:
        raise CheckpointError(f"Could not save '{name}': {error.strerror or error} ({parent}). Nothing was changed.") from error
    try:
        weights = {key: value.detach().to("cpu").contiguous() for key, value in model.state_dict().items()}
        save_file(weights, staging / WEIGHTS_FILE, metadata={"format": FORMAT})
        (staging / CONFIG_FILE).write_text(json.dumps(config, indent=1, allow_nan=False))
        for file in (WEIGHTS_FILE, CONFIG_FILE):
            _fsync(staging / file)
            os.chmod(staging / file, 0o644)  # readable like any other file the user saves
        os.chmod(staging, 0o755)
        with _folder_lock(parent):
            if folder.exists() and not overwrite and rename_if_taken:
                folder = _free_name(parent, name)
                config["name"] = folder.name
                (staging / CONFIG_FILE).write_text(json.dumps(config, indent=1, allow_nan=False))
                _fsync(staging / CONFIG_FILE)
            if folder.exists():
                if not overwrite:
                    raise CheckpointExistsError(f"A checkpoint named '{name}' already exists; choose another name or confirm overwriting it.")
                retired = parent / f".{name}.old-{uuid.uuid4().hex[:8]}"
                if _exchange(staging, folder):
                    # One atomic step: `folder` now holds the new checkpoint and `staging` the old one.
                    os.rename(staging, retired)
                else:
                    os.rename(folder, retired)
                    try:
                        os.rename(staging, folder)
                    except OSError:
                        os.rename(retired, folder)  # put the old checkpoint back before reporting
                        raise
                shutil.rmtree(retired, ignore_errors=True)
            else:
                try:
                    os.rename(staging, folder)  # fails if another writer got there first
                except OSError as error:
                    if error.errno in (errno.EEXIST, errno.ENOTEMPTY):
                        raise CheckpointExistsError(f"Another save named '{name}' finished first; choose another name.") from error
                    raise
        _fsync(parent)
    except CheckpointError:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    except (OSError, ValueError, SafetensorError) as error:
        shutil.rmtree(staging, ignore_errors=True)
        reason = getattr(error, "strerror", None) or str(error)
        raise CheckpointError(f"Could not save '{name}': {reason}. The previous checkpoint, if any, is unchanged.") from error
    finally:
        os.close(staging_lock)
    return folder


class _ReadsConfig:
    """What a checkpoint's config.json says, for loaded checkpoints and summaries alike."""

    config: dict

    @property
    def history(self) -> list[dict]:
        return self.config["history"]

    @property
    def dataset_name(self) -> str:
        return self.config["dataset"]["name"]

    @property
    def beta(self) -> float:
        return float(self.config["train"].get("beta", 1.0))


@dataclass(frozen=True)
class Checkpoint(_ReadsConfig):
    path: Path
    model: VAE
    config: dict

    @property
    def name(self) -> str:
        return self.path.name


def read_config(path: str | Path) -> dict:
    """config.json of the checkpoint folder `path`, validated; raises CheckpointError."""
    path = Path(path)
    name = path.name
    config_file = path / CONFIG_FILE
    if not path.is_dir():
        raise CheckpointError(f"There is no checkpoint folder '{name}'.")
    if not config_file.is_file() or config_file.is_symlink():
        raise CheckpointError(f"Checkpoint '{name}' has no {CONFIG_FILE}.")
    if config_file.stat().st_size > MAX_CONFIG_BYTES:
        raise CheckpointError(f"Checkpoint '{name}': {CONFIG_FILE} is too large to be a checkpoint's settings.")
    try:
        config = parse_config_text(config_file.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise CheckpointError(f"Checkpoint '{name}': {CONFIG_FILE} is not valid JSON ({error}).") from error
    except ConfigSchemaError as error:
        raise CheckpointError(f"Checkpoint '{name}': {CONFIG_FILE} {error}.") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"Checkpoint '{name}': {CONFIG_FILE} must hold a JSON object.")
    missing = [key for key in REQUIRED_KEYS if key not in config]
    if missing:
        raise CheckpointError(f"Checkpoint '{name}': {CONFIG_FILE} is missing {', '.join(missing)}; it is not a Latent Lab checkpoint.")
    if not isinstance(config["dataset"], dict) or "name" not in config["dataset"] or "image_shape" not in config["dataset"]:
        raise CheckpointError(f"Checkpoint '{name}': the dataset entry needs a name and an image_shape.")
    if not isinstance(config["history"], list) or not isinstance(config["train"], dict) or not isinstance(config["model"], dict):
        raise CheckpointError(f"Checkpoint '{name}': history must be a list, train and model objects.")
    for entry in config["history"]:
        if not (isinstance(entry, dict) and isinstance(entry.get("train"), dict) and isinstance(entry.get("test"), dict)):
            raise CheckpointError(f"Checkpoint '{name}': every history entry needs train and test figures.")
    try:
        model_config = ModelConfig.from_dict(config["model"])
    except (ModelConfigError, TypeError) as error:
        raise CheckpointError(f"Checkpoint '{name}': its model settings are invalid: {error}") from error
    try:
        check_settings(config, model_config.latent_dim)
    except ConfigSchemaError as error:
        raise CheckpointError(f"Checkpoint '{name}': {CONFIG_FILE} does not hold a checkpoint's settings: {error}.") from None
    if list(model_config.image_shape) != list(config["dataset"]["image_shape"]):
        raise CheckpointError(f"Checkpoint '{name}': the model's image shape does not match its data set's.")
    return config


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> Checkpoint:
    """Rebuild the model of checkpoint folder `path`. Raises CheckpointError; never unpickles."""
    path = Path(path)
    name = path.name
    config = read_config(path)
    weights_file = path / WEIGHTS_FILE
    if not weights_file.is_file() or weights_file.is_symlink():
        raise CheckpointError(f"Checkpoint '{name}' has no {WEIGHTS_FILE}.")
    # Bounded memory: the settings say how many weights there are, so a far larger file is not read.
    if weights_file.stat().st_size > 8 * ModelConfig.from_dict(config["model"]).parameter_count() + 2**20:
        raise CheckpointError(f"Checkpoint '{name}': {WEIGHTS_FILE} is far larger than its model settings need; it was not loaded.")
    try:
        weights = load_file(weights_file, device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise CheckpointError(
            f"Checkpoint '{name}': {WEIGHTS_FILE} is not a readable safetensors file (truncated, or another format). It was not loaded."
        ) from error
    import torch

    from vae.models import build_model

    model = build_model(ModelConfig.from_dict(config["model"]))
    expected = model.state_dict()
    if set(weights) != set(expected):
        raise CheckpointError(f"Checkpoint '{name}': its weights do not match its model settings (different layers).")
    for key, tensor in weights.items():
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise CheckpointError(
                f"Checkpoint '{name}': weight {key} has shape {tuple(tensor.shape)}, the model settings need {tuple(expected[key].shape)}."
            )
        if not tensor.is_floating_point() or not torch.isfinite(tensor).all():
            raise CheckpointError(f"Checkpoint '{name}': weight {key} is not finite floating point.")
    model.load_state_dict(weights)
    model.eval()
    return Checkpoint(path=path, model=model.to(device), config=config)


@dataclass(frozen=True)
class CheckpointSummary(_ReadsConfig):
    """What the model picker shows: the settings of one folder, or why it cannot be used."""

    name: str
    path: Path
    config: dict | None
    error: str | None = None

    @property
    def label(self) -> str:
        if self.error:
            return f"{self.name} (unusable)"
        model, final = self.config["model"], self.config.get("final_test") or {}
        loss = f", test -ELBO {final['total']:.1f}" if "total" in final else ""
        return f"{self.name}: {public_dataset_name(self.config['dataset']['name'])}, {model['arch']}, z={model['latent_dim']}{loss}"


def list_checkpoints(root: str | Path | None = None) -> list[CheckpointSummary]:
    """Every checkpoint folder under root (default_root()), sorted by name; broken ones carry their error."""
    root = Path(root) if root is not None else default_root()
    if not root.is_dir():
        return []
    recover_interrupted_saves(root)
    summaries = []
    for path in sorted(root.iterdir()):
        if path.name.startswith(".") or not path.is_dir():
            continue
        try:
            checked = checkpoint_path(root, path.name)
            summaries.append(CheckpointSummary(path.name, checked, read_config(checked)))
        except CheckpointError as error:
            summaries.append(CheckpointSummary(path.name, path, None, str(error)))
        except Exception as error:  # noqa: BLE001 - one odd folder must never take the picker (and every page) down
            summaries.append(CheckpointSummary(path.name, path, None, f"Checkpoint '{path.name}' cannot be read: {type(error).__name__}."))
    return summaries
