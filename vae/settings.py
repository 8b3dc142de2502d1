"""What the operator (whoever starts the server) decides: server folders, the teacher's password, limits.

Read from environment variables `LATENT_LAB_*` (and, in the app, from `.streamlit/secrets.toml`,
which `ui.py` passes in as `overrides`). Every setting has a default that is safe for a server
a class can reach and still lets one person on a laptop run `streamlit run app.py` unconfigured:
no server folders, no teacher (so nobody replaces the shipped models), limits sized for 30
students on a 2-core machine. Nothing here imports Streamlit.

| setting (secrets.toml key) | environment variable | default |
| --- | --- | --- |
| folder_roots | LATENT_LAB_FOLDER_ROOTS (os.pathsep-separated) | none |
| teacher_password | LATENT_LAB_TEACHER_PASSWORD | none: no teacher |
| max_runs_per_session | LATENT_LAB_MAX_RUNS_PER_SESSION | 1 queued or running |
| max_queue | LATENT_LAB_MAX_QUEUE | 30 queued runs |
| max_images_per_run | LATENT_LAB_MAX_IMAGES_PER_RUN | 3,000,000 (epochs x training images) |
| max_run_minutes | LATENT_LAB_MAX_RUN_MINUTES | 20 (then the run stops and saves) |
| student_quota_mb | LATENT_LAB_STUDENT_QUOTA_MB | 500 (all students' models together) |
| ray_address | LATENT_LAB_RAY_ADDRESS | none: runs train in this process (`auto`, `ray://host:10001`: a Ray cluster) |
| ray_num_cpus | LATENT_LAB_RAY_NUM_CPUS | 1 CPU per run on the cluster (0.1 to 256) |
| ray_num_gpus | LATENT_LAB_RAY_NUM_GPUS | 0 GPUs per run (0 to 8; 0.25 puts four runs on one GPU) |
| ray_max_runs | LATENT_LAB_RAY_MAX_RUNS | 64 runs handed to the cluster at once (the rest wait here) |
| upload_max_files | LATENT_LAB_UPLOAD_MAX_FILES | 2,000 pictures in one upload |
| upload_max_mb | LATENT_LAB_UPLOAD_MAX_MB | 50 MB of one upload, unpacked |
| upload_max_image_mpx | LATENT_LAB_UPLOAD_MAX_IMAGE_MPX | 12 million pixels in one picture |
| upload_max_total_mpx | LATENT_LAB_UPLOAD_MAX_TOTAL_MPX | 200 million pixels in one upload |
| upload_keep_hours | LATENT_LAB_UPLOAD_KEEP_HOURS | 24 hours an upload no model or run uses is kept |
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Mapping

ENV_PREFIX = "LATENT_LAB_"


class SettingsError(ValueError):
    """A setting the operator gave that makes no sense; the message names it."""


@dataclass(frozen=True)
class Settings:
    folder_roots: tuple[Path, ...] = ()  # resolved server folders students' teacher may train on
    teacher_password: str | None = None
    max_runs_per_session: int = 1
    max_queue: int = 30
    max_images_per_run: int = 3_000_000  # compute budget: epochs x training images
    max_run_minutes: float = 20.0
    student_quota_mb: float = 500.0
    ray_address: str | None = None  # None: the in-process executor; else vae.executors.ray_cluster
    ray_num_cpus: float = 1.0  # Ray resources each run's actor asks for
    ray_num_gpus: float = 0.0
    ray_max_runs: int = 64
    upload_max_files: int = 2000  # what one student's upload may hold (vae.student_data.UploadLimits)
    upload_max_mb: int = 50  # all its files together, unpacked
    upload_max_image_mpx: int = 12  # one picture, million pixels
    upload_max_total_mpx: int = 200  # all its pictures together
    upload_keep_hours: float = 24.0  # an upload no checkpoint or run uses is removed after this long

    @property
    def teacher_enabled(self) -> bool:
        return bool(self.teacher_password)

    @property
    def max_run_seconds(self) -> float:
        return self.max_run_minutes * 60.0

    @property
    def student_quota_bytes(self) -> int:
        return int(self.student_quota_mb * 1024 * 1024)


def _number(name: str, text, kind):
    try:
        value = kind(text)
    except (TypeError, ValueError):
        raise SettingsError(f"{name} must be a number, not {text!r}.") from None
    if not (math.isfinite(value) and value > 0):
        raise SettingsError(f"{name} must be above zero, not {text!r}.")
    return value


_WHOLE_NUMBERS = ("max_runs_per_session", "max_queue", "max_images_per_run", "upload_max_files", "upload_max_mb",
                  "upload_max_image_mpx", "upload_max_total_mpx")
RAY_BOUNDS = {"ray_num_cpus": (0.1, 256.0), "ray_num_gpus": (0.0, 8.0), "ray_max_runs": (1, 10_000)}


def _bounded(name: str, text, kind, low, high):
    try:
        value = kind(text)
    except (TypeError, ValueError):
        raise SettingsError(f"{name} must be a number, not {text!r}.") from None
    if not (math.isfinite(value) and low <= value <= high):
        raise SettingsError(f"{name} must be from {low:g} to {high:g}, not {text!r}.")
    return value


def _ray_address(text) -> str | None:
    address = str(text).strip()
    if not address or address.lower() == "none":
        return None
    host, colon, port = address.removeprefix("ray://").rpartition(":")
    if address != "auto" and not (host and colon and port.isdigit() and 0 < int(port) < 65536):
        raise SettingsError(f"ray_address must be 'auto' (the Ray cluster this machine joined with `ray start`) "
                            f"or ray://HOST:PORT (e.g. ray://head:10001), not {address!r}.")
    return address


def _roots(value) -> tuple[Path, ...]:
    items = value.split(os.pathsep) if isinstance(value, str) else list(value)
    # Resolved once here, so every later check compares against the real folder (symlinks followed).
    return tuple(Path(item).expanduser().resolve() for item in items if str(item).strip())


def load_settings(overrides: Mapping | None = None, environ: Mapping | None = None) -> Settings:
    """The operator's settings: `overrides` (e.g. st.secrets' `latent_lab` table) over the environment.

    Raises SettingsError naming a setting that is not a positive number (or, for the Ray
    settings, outside its bounds; ray_address must be `auto` or `ray://HOST:PORT`).
    """
    environ = os.environ if environ is None else environ
    given: dict = {}
    for item in fields(Settings):
        key = ENV_PREFIX + item.name.upper()
        if overrides is not None and item.name in overrides:
            given[item.name] = overrides[item.name]
        elif environ.get(key, "").strip():
            given[item.name] = environ[key].strip()
    values: dict = {}
    for name, value in given.items():
        if name == "folder_roots":
            values[name] = _roots(value)
        elif name == "teacher_password":
            values[name] = str(value) or None
        elif name == "ray_address":
            values[name] = _ray_address(value)
        elif name in RAY_BOUNDS:
            values[name] = _bounded(name, value, int if name == "ray_max_runs" else float, *RAY_BOUNDS[name])
        elif name in _WHOLE_NUMBERS:
            values[name] = _number(name, value, int)
        else:
            values[name] = _number(name, value, float)
    return Settings(**values)


def allowed_folder(path: str | Path, roots: tuple[Path, ...]) -> Path | None:
    """`path` resolved (symlinks and `..` followed) if it lies inside one of `roots`, else None."""
    try:
        resolved = Path(path).expanduser().resolve()
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL byte
        return None
    return resolved if any(resolved == root or resolved.is_relative_to(root) for root in roots) else None


def server_folders(roots: tuple[Path, ...], limit: int = 200) -> list[Path]:
    """The folders offered on the Train page: each root and the folders directly inside it.

    Each is checked after resolving, so a symlink inside a root that leads out of it is left out.
    """
    offered: list[Path] = []
    for root in roots:
        if not root.is_dir():
            continue
        offered.append(root)
        try:
            children = sorted(child for child in root.iterdir() if not child.name.startswith("."))
        except OSError:
            continue
        for child in children:
            inside = allowed_folder(child, roots)
            if inside is not None and inside.is_dir() and inside not in offered:
                offered.append(inside)
            if len(offered) >= limit:
                return offered
    return offered
