"""One short training per new data set through the CLI (`python -m vae.train`), offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from dataset_files import accept_fake_cifar10, write_tiny_cifar10, write_tiny_idx_set
from vae.train_cli import main

ROOT = Path(__file__).resolve().parent.parent
SMALL_MODEL = ["--epochs", "1", "--latent-dim", "2", "--hidden", "32", "--batch-size", "64"]


def saved_config(out: Path) -> dict:
    return json.loads((out / "config.json").read_text())


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("LATENT_LAB_OFFLINE", "1")


@pytest.mark.parametrize("name, folder, arch", [
    ("mnist", "MNIST", "mlp"), ("fashion-mnist", "FashionMNIST", "conv"), ("kmnist", "KMNIST", "mlp"),
])
def test_one_epoch_on_an_offline_idx_set(tmp_path, offline, name, folder, arch):
    write_tiny_idx_set(tmp_path / "data", folder)
    out = tmp_path / f"{name}-run"
    assert main(["--dataset", name, "--data-dir", str(tmp_path / "data"), "--arch", arch, *SMALL_MODEL, "--out", str(out)]) == 0
    config = saved_config(out)
    assert config["dataset"]["name"] == name and config["dataset"]["image_shape"] == [1, 28, 28]
    assert len(config["history"]) == 1


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_one_epoch_on_colour_cifar10_with_both_architectures(tmp_path, offline, monkeypatch, arch):
    accept_fake_cifar10(monkeypatch)
    write_tiny_cifar10(tmp_path / "data")
    out = tmp_path / f"cifar-{arch}"
    assert main(["--dataset", "cifar10", "--data-dir", str(tmp_path / "data"), "--arch", arch, *SMALL_MODEL,
                 "--likelihood", "gaussian", "--out", str(out)]) == 0
    config = saved_config(out)
    assert config["dataset"]["image_shape"] == [3, 32, 32] and config["dataset"]["train_size"] == 20


def test_one_epoch_on_shapes(tmp_path):
    out = tmp_path / "shapes-run"
    assert main(["--dataset", "shapes", "--epochs", "1", "--latent-dim", "5", "--hidden", "32", "--batch-size", "1000",
                 "--out", str(out)]) == 0
    config = saved_config(out)
    assert config["dataset"]["label_names"] == ["square", "ellipse", "triangle", "heart"]
    assert config["dataset"]["train_size"] == 18_000


@pytest.mark.parametrize("options, shape, arch", [("", [1, 28, 28], "mlp"), ("?size=64&color=rgb", [3, 64, 64], "conv")])
def test_one_epoch_on_an_image_folder_reports_the_skipped_file(tmp_path, capsys, options, shape, arch):
    pictures = tmp_path / "my pictures"
    for label in ("red", "blue"):
        (pictures / label).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (20 + 7 * i, 30), (200, 10, 10) if label == "red" else (10, 10, 200)).save(pictures / label / f"{i}.png")
    (pictures / "red" / "torn.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    out = tmp_path / "folder-run"
    assert main(["--dataset", f"folder:{pictures}{options}", *SMALL_MODEL, "--arch", arch, "--out", str(out)]) == 0
    assert "note: Skipped 1 of 7 image file(s) that could not be read: red/torn.jpg." in capsys.readouterr().err
    config = saved_config(out)
    assert config["dataset"]["image_shape"] == shape and config["dataset"]["label_names"] == ["blue", "red"]


def test_missing_files_end_the_command_with_the_message_and_status_2(tmp_path, offline, capsys):
    assert main(["--dataset", "mnist", "--data-dir", str(tmp_path / "empty"), "--out", str(tmp_path / "never")]) == 2
    assert capsys.readouterr().err == (
        f"error: MNIST is not in {tmp_path}/empty/MNIST/raw and downloading is switched off (LATENT_LAB_OFFLINE=1). "
        "Put these files in that folder (uncompressed IDX files: gunzip the .gz downloads from "
        "https://ossci-datasets.s3.amazonaws.com/mnist/): "
        "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte.\n"
    )
    assert not (tmp_path / "never").exists()


def test_the_real_command_trains_on_mnist_files_in_the_data_folder(tmp_path):
    write_tiny_idx_set(tmp_path / "data", "MNIST")
    done = subprocess.run([sys.executable, "-m", "vae.train", "--dataset", "mnist", "--data-dir", str(tmp_path / "data"),
                           *SMALL_MODEL, "--out", str(tmp_path / "mnist-cli")],
                          cwd=ROOT, env={**os.environ, "LATENT_LAB_OFFLINE": "1"}, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert saved_config(tmp_path / "mnist-cli")["dataset"]["train_size"] == 24
