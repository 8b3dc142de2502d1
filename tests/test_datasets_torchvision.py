"""torchvision's downloadable sets read offline through the registry, and the data folder (vae.datasets.torchvision_sets)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dataset_files import accept_fake_cifar10, write_tiny_cifar10, write_tiny_idx_set
from vae.datasets import REGISTRY, DataError, default_data_dir, load_dataset
from vae.datasets import torchvision_sets


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("LATENT_LAB_OFFLINE", "1")


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST"), ("kmnist", "KMNIST")])
def test_idx_files_are_read_by_torchvision_through_load_dataset(tmp_path, offline, name, folder):
    written = write_tiny_idx_set(tmp_path, folder)
    raw = tmp_path / folder / "raw"
    assert (raw / "train-images-idx3-ubyte").read_bytes()[:16] == bytes.fromhex("00000803 00000018 0000001c 0000001c")
    assert (raw / "t10k-labels-idx1-ubyte").read_bytes()[:8] == bytes.fromhex("00000801 00000008")
    dataset = load_dataset(name, tmp_path)
    assert dataset.image_shape == (1, 28, 28)
    assert dataset.train_images.dtype == torch.float32
    np.testing.assert_allclose(dataset.train_images[:, 0].numpy(), written["train_images"] / 255.0, atol=1e-7)
    np.testing.assert_allclose(dataset.test_images[:, 0].numpy(), written["t10k_images"] / 255.0, atol=1e-7)
    assert dataset.train_labels.tolist() == written["train_labels"].tolist()
    assert dataset.test_labels.tolist() == written["t10k_labels"].tolist()
    assert dataset.label_names == torchvision_sets.TORCHVISION_SETS[name].label_names
    assert len(dataset.label_names) == 10


def test_missing_mnist_files_give_one_message_naming_folder_and_files(tmp_path, offline):
    with pytest.raises(DataError) as caught:
        load_dataset("mnist", tmp_path / "data")
    assert str(caught.value) == (
        f"MNIST is not in {tmp_path}/data/MNIST/raw and downloading is switched off (LATENT_LAB_OFFLINE=1). "
        "Put these files in that folder (uncompressed IDX files: gunzip the .gz downloads from "
        "https://ossci-datasets.s3.amazonaws.com/mnist/): "
        "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte."
    )


def test_only_the_missing_files_are_named(tmp_path, offline):
    write_tiny_idx_set(tmp_path, "FashionMNIST")
    (tmp_path / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    (tmp_path / "FashionMNIST" / "raw" / "train-images-idx3-ubyte").unlink()
    with pytest.raises(DataError) as caught:
        load_dataset("fashion-mnist", tmp_path)
    assert str(caught.value).endswith("): train-images-idx3-ubyte, t10k-labels-idx1-ubyte.")
    assert f"{tmp_path}/FashionMNIST/raw" in str(caught.value)


def test_no_network_is_reported_without_trying_to_download(tmp_path, monkeypatch):
    monkeypatch.delenv("LATENT_LAB_OFFLINE", raising=False)
    monkeypatch.setattr(torchvision_sets, "_reachable", lambda url, seconds=5.0: "codh.rois.ac.jp: Name or service not known")

    def no_download(*args, **kwargs):
        raise AssertionError("download attempted although the network is down")

    monkeypatch.setattr(torchvision_sets, "_read_torchvision", no_download)
    with pytest.raises(DataError) as caught:
        load_dataset("kmnist", tmp_path)
    assert str(caught.value).startswith(
        f"Kuzushiji-MNIST is not in {tmp_path}/KMNIST/raw and could not be downloaded "
        "(no network: codh.rois.ac.jp: Name or service not known). Put these files in that folder")


# Downloads that succeed, or fail with an HTTP status or silence, against a local server: tests/test_downloads.py.


def test_a_failed_download_names_the_files_to_place_by_hand(tmp_path, monkeypatch):
    from torchvision.datasets import CIFAR10

    monkeypatch.delenv("LATENT_LAB_OFFLINE", raising=False)
    monkeypatch.setattr(torchvision_sets, "_reachable", lambda url, seconds=5.0: None)
    monkeypatch.setattr(CIFAR10, "url", "http://127.0.0.1:9/cifar-10-python.tar.gz")  # nothing listens on port 9
    with pytest.raises(DataError) as caught:
        load_dataset("cifar10", tmp_path)
    assert str(caught.value).startswith(
        f"CIFAR-10 is not in {tmp_path}/cifar-10-batches-py and the download failed "
        "(cifar-10-python.tar.gz: 127.0.0.1: Connection refused). Put these files in that folder")


def test_network_probe_answers_instead_of_hanging():
    # A port nothing listens on, on this machine: refused at once, reported as a reason, not raised.
    reason = torchvision_sets._reachable("http://127.0.0.1:9/mnist.gz", seconds=2.0)
    assert reason is not None and reason.startswith("127.0.0.1")


def test_damaged_idx_file_is_a_clear_error(tmp_path, offline):
    write_tiny_idx_set(tmp_path, "MNIST")
    images = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:100])  # header says 24 images, the body has 84 bytes
    with pytest.raises(DataError, match=r"^The MNIST files in .*MNIST/raw could not be read \(.*\)\. They may be damaged"):
        load_dataset("mnist", tmp_path)


def test_cifar10_gives_colour_images_through_torchvision(tmp_path, offline, monkeypatch):
    accept_fake_cifar10(monkeypatch)
    written = write_tiny_cifar10(tmp_path)
    dataset = load_dataset("cifar10", tmp_path)
    assert dataset.image_shape == (3, 32, 32)
    assert len(dataset.train_images) == 20 and len(dataset.test_images) == 4
    np.testing.assert_allclose(dataset.train_images.reshape(20, -1).numpy(), written["train"] / 255.0, atol=1e-7)
    assert dataset.label_names[0] == "airplane"


def test_cifar10_files_failing_their_checksum_are_refused_not_unpickled(tmp_path, offline):
    write_tiny_cifar10(tmp_path)
    with pytest.raises(DataError, match=r"^The CIFAR-10 files in .*cifar-10-batches-py could not be read .*not the official ones"):
        load_dataset("cifar10", tmp_path)


def test_missing_cifar10_names_all_seven_files(tmp_path, offline):
    with pytest.raises(DataError) as caught:
        load_dataset("cifar10", tmp_path)
    assert str(caught.value).startswith(f"CIFAR-10 is not in {tmp_path}/cifar-10-batches-py and downloading is switched off")
    assert str(caught.value).endswith(
        "data_batch_1, data_batch_2, data_batch_3, data_batch_4, data_batch_5, test_batch, batches.meta.")


def test_default_data_folder_is_in_the_user_cache_unless_told(monkeypatch, tmp_path):
    monkeypatch.delenv("LATENT_LAB_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert default_data_dir() == tmp_path / "cache" / "latent-lab" / "data"
    monkeypatch.setenv("LATENT_LAB_DATA", str(tmp_path / "elsewhere"))
    assert default_data_dir() == tmp_path / "elsewhere"


def test_registry_entries_say_how_the_train_page_should_ask_for_them():
    assert {n: (REGISTRY[n].embedded, REGISTRY[n].prefix) for n in ("shapes", "mnist", "fashion-mnist", "kmnist", "cifar10", "folder")} == {
        "shapes": (True, False), "mnist": (False, False), "fashion-mnist": (False, False), "kmnist": (False, False),
        "cifar10": (False, False), "folder": (True, True),
    }
    assert all(REGISTRY[n].source for n in REGISTRY)
