"""Hostile files and names: nothing ever unpickles, nothing escapes the checkpoints folder."""

from __future__ import annotations

import pickle
import re
import tomllib
from pathlib import Path

import pytest
import torch

from vae.checkpoints import CheckpointError, checkpoint_path, list_checkpoints, load_checkpoint, save_checkpoint, validate_name
from vae.models import ModelConfig, build_model

ROOT = Path(__file__).resolve().parent.parent


class _WritesAFileWhenUnpickled:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "unpickled!"))


def _pickle_bomb(marker: Path) -> bytes:
    return pickle.dumps(_WritesAFileWhenUnpickled(marker))


def _saved(tmp_path: Path, name: str = "good") -> Path:
    torch.manual_seed(0)
    model = build_model(ModelConfig(image_shape=(1, 8, 8), latent_dim=2, hidden=(16,)))
    return save_checkpoint(tmp_path / name, model, dataset={"name": "digits"}, train={}, history=[])


def test_a_pickle_planted_anywhere_in_a_checkpoint_is_never_loaded(tmp_path):
    marker = tmp_path / "pwned.txt"
    folder = _saved(tmp_path)
    bomb = _pickle_bomb(marker)
    for planted in ("optimizer.pt", "model.pt", "pytorch_model.bin", "model.pkl", "extra.npy"):
        (folder / planted).write_bytes(bomb)
    (folder / "projections").mkdir()
    (folder / "projections" / "umap.npz").write_bytes(bomb)
    load_checkpoint(folder)
    list_checkpoints(tmp_path)

    hostile = _saved(tmp_path, "hostile")
    (hostile / "model.safetensors").write_bytes(bomb)
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_checkpoint(hostile)
    (hostile / "config.json").write_bytes(bomb)
    with pytest.raises(CheckpointError):
        load_checkpoint(hostile)
    assert not marker.exists()


def test_symlinks_leading_outside_the_checkpoints_folder_are_refused(tmp_path):
    outside = _saved(tmp_path / "elsewhere", "secret")
    root = tmp_path / "checkpoints"
    root.mkdir()
    (root / "sneaky").symlink_to(outside, target_is_directory=True)
    with pytest.raises(CheckpointError, match="outside the checkpoints folder"):
        checkpoint_path(root, "sneaky")
    [summary] = list_checkpoints(root)
    assert summary.error and "outside" in summary.error

    inside = _saved(root, "real")
    (inside / "model.safetensors").unlink()
    (inside / "model.safetensors").symlink_to(outside / "model.safetensors")
    with pytest.raises(CheckpointError, match="has no model.safetensors"):
        load_checkpoint(inside)


@pytest.mark.parametrize("name", ["..", "../x", "a/b", "/etc", "a\\b", "bad\nname", "tab\tname", "nul\x00", "", ".hidden",
                                  "x" * 65, "spaced name", "é"])
def test_names_with_separators_dots_or_control_characters_are_refused(tmp_path, name):
    with pytest.raises(CheckpointError):
        validate_name(name)
    with pytest.raises(CheckpointError):
        checkpoint_path(tmp_path, name)
    if "/" not in name and name not in ("", ".."):  # a path's last part is the name save_checkpoint checks
        model = build_model(ModelConfig(image_shape=(1, 8, 8), latent_dim=2, hidden=(16,)))
        with pytest.raises(CheckpointError):
            save_checkpoint(tmp_path / name, model, dataset={"name": "digits"}, train={}, history=[])
    assert list(tmp_path.iterdir()) == []


def test_streamlit_config_keeps_xsrf_protection_and_a_sane_upload_limit():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["enableXsrfProtection"] is True
    assert 1 <= config["server"]["maxUploadSize"] <= 50  # MB: images, not archives
    assert config["server"].get("enableCORS", True) is True


def test_streamlit_config_does_no_per_rerun_housekeeping_that_starves_a_class():
    # Measured with bench/load.py (ten sessions): a full gc.collect() after every rerun (0.24 s with torch,
    # sklearn and umap loaded, holding the GIL) and the watcher walking ~3,400 modules' files per rerun
    # took 60% of the server's time. Both are for editing scripts, not serving a class.
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["runner"]["postScriptGC"] is False
    assert config["server"]["fileWatcherType"] == "none"
    assert config["server"]["runOnSave"] is False


UNPICKLING_CALLS = re.compile(r"torch\.load\(|pickle\.loads?\(|allow_pickle\s*=\s*True|dill\.|joblib\.load|cloudpickle")


def test_no_code_in_the_project_can_unpickle():
    offenders = []
    for path in ROOT.rglob("*.py"):
        relative = path.relative_to(ROOT)
        if relative.parts[0] in ("tests", ".git") or "site-packages" in relative.parts:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if UNPICKLING_CALLS.search(line) and "weights_only=True" not in line:
                offenders.append(f"{relative}:{number}: {line.strip()}")
    assert offenders == []


def test_the_source_scan_would_catch_an_unpickling_call():
    for line in ("state = torch.load(path)", "pickle.load(f)", "np.load(p, allow_pickle=True)", "pickle.loads(b)"):
        assert UNPICKLING_CALLS.search(line)
    assert not UNPICKLING_CALLS.search("np.load(p, allow_pickle=False)")
