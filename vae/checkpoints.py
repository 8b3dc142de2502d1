"""Checkpoints: a folder holding `model.safetensors` (weights only) and `config.json`.

Nothing here unpickles: weights are read with safetensors and settings with json. Saving writes
a hidden temporary folder beside the target and renames it into place, so a crash leaves either
the old checkpoint or the new one, whole.
"""

from __future__ import annotations

import datetime as _dt
import errno
import json
import os
import shutil
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from safetensors import SafetensorError

from vae.checkpoint_files import (NAME_PATTERN, folder_lock as _folder_lock, free_name as _free_name,
                                 new_staging as _new_staging)
from vae.checkpoint_files import exchange as _exchange, fsync as _fsync, recover_interrupted_saves, release_staging
from vae.checkpoint_info import FORMAT, CheckpointInfo, library_versions
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
MAX_CONFIG_BYTES = 8 * 1024 * 1024
REQUIRED_KEYS = ("model", "dataset", "train", "history", "versions")
SHIPPED_ROOT = Path(__file__).resolve().parent.parent / "checkpoints"  # the models that come with the code
CHECKPOINTS_ENV = "LATENT_LAB_CHECKPOINTS"


def default_root() -> Path:
    """Where new runs are saved: $LATENT_LAB_CHECKPOINTS, else `checkpoints` in the per-user data folder.

    The data folder is platformdirs' user_data_dir("latent-lab") (~/.local/share/latent-lab on
    Linux, ~/Library/Application Support/latent-lab on macOS, %LOCALAPPDATA%\\latent-lab on
    Windows), so a class's runs never land in the code's git tree. The shipped models stay in
    SHIPPED_ROOT; `list_checkpoints()` lists both (only this folder when $LATENT_LAB_CHECKPOINTS is set).
    """
    configured = os.environ.get(CHECKPOINTS_ENV)
    if configured:
        return Path(configured)
    from platformdirs import user_data_dir

    return Path(user_data_dir("latent-lab", appauthor=False)) / "checkpoints"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be saved or loaded; the message is meant for the user."""


class CheckpointExistsError(CheckpointError):
    """Saving would replace a checkpoint and overwriting was not asked for."""


def validate_name(name: str) -> str:
    """A checkpoint name: letters, digits, '-' and '_' (at most 64, starting with a letter or digit)."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise CheckpointError(f"'{name}' is not a valid checkpoint name: use 1-64 letters, digits, '-' or '_', "
                              "starting with a letter or digit.")
    return name


def checkpoint_path(root: str | Path, name: str) -> Path:
    """The folder for `name` under `root`, refusing names and symlinks that lead outside root."""
    root_path = Path(root).resolve()
    path = root_path / validate_name(name)
    if path.is_symlink() or not path.resolve().is_relative_to(root_path):
        raise CheckpointError(f"Checkpoint '{name}' points outside the checkpoints folder; refused.")
    return path


def _refuse_non_finite(name: str, model: VAE, config: dict) -> None:
    # NaN or inf in a checkpoint would load as a model that draws nothing (weights) or break the
    # JSON (history): refuse both with a sentence instead of json's "Out of range float values".
    import torch

    broken = [key for key, value in model.state_dict().items() if value.is_floating_point()
              and not torch.isfinite(value).all()]
    if broken:
        raise CheckpointError(f"Could not save '{name}': its weights hold NaN or infinite values "
                              f"({', '.join(broken[:3])}). Nothing was changed.")
    try:
        json.dumps(config, allow_nan=False)
    except ValueError:
        raise CheckpointError(f"Could not save '{name}': its history holds "
                              "NaN or infinite numbers. Nothing was changed.") from None


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
    config = CheckpointInfo(
        name=name, model=model.config.to_dict(), dataset={**dataset, "image_shape": list(model.config.image_shape)},
        train=train, history=history,
        final_test=history[-1].get("test") if history and isinstance(history[-1], dict) else None,
        versions=library_versions(), created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        extra=dict(extra or {}),
    ).to_dict()
    if folder.exists() and not overwrite and not rename_if_taken:
        raise CheckpointExistsError(f"A checkpoint named '{name}' already exists; "
                                    "choose another name or confirm overwriting it.")
    _refuse_non_finite(name, model, config)
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging, staging_lock = _new_staging(parent, name)
    except OSError as error:
        raise CheckpointError(
            f"Could not save '{name}': {error.strerror or error} ({parent}). Nothing was changed.") from error
    try:
        weights = {key: value.detach().to("cpu").contiguous() for key, value in model.state_dict().items()}
        save_file(weights, staging / WEIGHTS_FILE, metadata={"format": FORMAT})
        (staging / CONFIG_FILE).write_text(json.dumps(config, indent=1, allow_nan=False))
        for file in (WEIGHTS_FILE, CONFIG_FILE):
            _fsync(staging / file)
            os.chmod(staging / file, 0o644)  # readable like any other file the user saves
        os.chmod(staging, 0o755)
        with _folder_lock(parent):
            release_staging(staging, staging_lock)  # the folder lock keeps every clean-up away from it
            if folder.exists() and not overwrite and rename_if_taken:
                folder = _free_name(parent, name)
                config["name"] = folder.name
                (staging / CONFIG_FILE).write_text(json.dumps(config, indent=1, allow_nan=False))
                _fsync(staging / CONFIG_FILE)
            if folder.exists():
                if not overwrite:
                    raise CheckpointExistsError(f"A checkpoint named '{name}' already exists; "
                                                "choose another name or confirm overwriting it.")
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
                        raise CheckpointExistsError(
                            f"Another save named '{name}' finished first; choose another name.") from error
                    raise
        _fsync(parent)
    except CheckpointError:
        release_staging(staging, staging_lock)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    except (OSError, ValueError, SafetensorError) as error:
        release_staging(staging, staging_lock)
        shutil.rmtree(staging, ignore_errors=True)
        reason = getattr(error, "strerror", None) or str(error)
        raise CheckpointError(
            f"Could not save '{name}': {reason}. The previous checkpoint, if any, is unchanged.") from error
    finally:
        release_staging(staging, staging_lock)
    return folder


class _ReadsConfig:
    """What a checkpoint's config.json says, for loaded checkpoints and summaries alike."""

    config: dict

    @property
    def info(self) -> CheckpointInfo:
        return CheckpointInfo.from_dict(self.config)

    @property
    def history(self) -> list[dict]:
        return self.info.history

    @property
    def dataset_name(self) -> str:
        return self.info.dataset_name

    @property
    def beta(self) -> float:
        return self.info.beta


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
        raise CheckpointError(f"Checkpoint '{name}': {CONFIG_FILE} is missing "
                              f"{', '.join(missing)}; it is not a Latent Lab checkpoint.")
    if (not isinstance(config["dataset"], dict) or "name" not in config["dataset"]
            or "image_shape" not in config["dataset"]):
        raise CheckpointError(f"Checkpoint '{name}': the dataset entry needs a name and an image_shape.")
    if (not isinstance(config["history"], list) or not isinstance(config["train"], dict)
            or not isinstance(config["model"], dict)):
        raise CheckpointError(f"Checkpoint '{name}': history must be a list, train and model objects.")
    for entry in config["history"]:
        if not (isinstance(entry, dict) and isinstance(entry.get("train"), dict)
                and isinstance(entry.get("test"), dict)):
            raise CheckpointError(f"Checkpoint '{name}': every history entry needs train and test figures.")
    try:
        model_config = ModelConfig.from_dict(config["model"])
    except (ModelConfigError, TypeError) as error:
        raise CheckpointError(f"Checkpoint '{name}': its model settings are invalid: {error}") from error
    try:
        check_settings(config, model_config.latent_dim)
    except ConfigSchemaError as error:
        raise CheckpointError(
            f"Checkpoint '{name}': {CONFIG_FILE} does not hold a checkpoint's settings: {error}.") from None
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
    model_config = ModelConfig.from_dict(config["model"])  # checked by read_config; it bounds the file read below
    if weights_file.stat().st_size > 8 * model_config.parameter_count() + 2**20:
        raise CheckpointError(f"Checkpoint '{name}': {WEIGHTS_FILE} is far larger "
                              "than its model settings need; it was not loaded.")
    try:
        weights = load_file(weights_file, device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"Checkpoint '{name}': {WEIGHTS_FILE} is not a readable safetensors file (truncated, "
                              "or another format). It was not loaded.") from error
    import torch

    from vae.models import build_model

    model = build_model(model_config)
    expected = model.state_dict()
    if set(weights) != set(expected):
        raise CheckpointError(f"Checkpoint '{name}': its weights do not match its model settings (different layers).")
    for key, tensor in weights.items():
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise CheckpointError(f"Checkpoint '{name}': weight {key} has shape {tuple(tensor.shape)}, the model "
                                  f"settings need {tuple(expected[key].shape)}.")
        if not tensor.is_floating_point() or not torch.isfinite(tensor).all():
            raise CheckpointError(f"Checkpoint '{name}': weight {key} is not finite floating point.")
    model.load_state_dict(weights)
    model.eval()
    return Checkpoint(path=path, model=model.to(device), config=config)


@dataclass(frozen=True)
class CheckpointSummary(_ReadsConfig):
    """What the model picker shows: the settings of one folder, or why it cannot be used.

    shipped: one of the models that come with the code (SHIPPED_ROOT), read-only.
    """

    name: str
    path: Path
    config: dict | None
    error: str | None = None
    shipped: bool = False

    @property
    def label(self) -> str:
        if self.error:
            return f"{self.name} (unusable)"
        model, final = self.config["model"], self.config.get("final_test") or {}
        loss = f", test -ELBO {final['total']:.1f}" if "total" in final else ""
        shipped = " (shipped)" if self.shipped else ""  # first, so a narrow sidebar still shows it
        return (f"{self.name}{shipped}: {public_dataset_name(self.config['dataset']['name'])}, {model['arch']}, "
                f"z={model['latent_dim']}{loss}")


def list_checkpoints(root: str | Path | None = None) -> list[CheckpointSummary]:
    """Every checkpoint folder under root, sorted by name; broken ones carry their error.

    Without a root: what the picker lists, the runs saved in default_root() and, unless
    $LATENT_LAB_CHECKPOINTS chooses the one folder (as it always did), the shipped models, marked
    shipped (a saved run of the same name is listed instead).
    """
    summaries = _list_folder(Path(root) if root is not None else default_root(), repair=True)
    if root is None and shipped_models_listed() and not _same_folder(default_root(), SHIPPED_ROOT):
        taken = {summary.name for summary in summaries}
        summaries += [replace(summary, shipped=True) for summary in _list_folder(SHIPPED_ROOT, repair=False)
                      if summary.name not in taken]
        summaries.sort(key=lambda summary: summary.name)
    return summaries


def shipped_models_listed() -> bool:
    """Whether the picker lists the shipped models beside the saved runs (no $LATENT_LAB_CHECKPOINTS)."""
    return not os.environ.get(CHECKPOINTS_ENV)


def refuse_shipped_name(root: str | Path, name: str) -> None:
    """CheckpointExistsError when saving `name` under root would hide the shipped model of that name.

    The shipped models are read-only (they live with the code); a copy of them in root is not.
    """
    root = Path(root)
    if shipped_models_listed() and (SHIPPED_ROOT / name).is_dir() and not _same_folder(root, SHIPPED_ROOT) \
            and not (root / name).exists():
        raise CheckpointExistsError(f"'{name}' is the name of a shipped model, which "
                                    "cannot be replaced; choose another name.")


def _same_folder(first: Path, second: Path) -> bool:
    try:
        return first.resolve() == second.resolve()
    except OSError:
        return False


def _list_folder(root: Path, repair: bool) -> list[CheckpointSummary]:
    if not root.is_dir():
        return []
    if repair:
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
            summaries.append(CheckpointSummary(path.name, path, None,
                                               f"Checkpoint '{path.name}' cannot be read: {type(error).__name__}."))
    return summaries
