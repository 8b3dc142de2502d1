"""The data sets of issue 6: generated shapes, torchvision's sets read offline, the user's image folder."""

from __future__ import annotations

import io
import pickle  # only to write a fake CIFAR-10 in torchvision's own (pickled) batch format; the library never pickles
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vae import datasets_extra
from vae.data import REGISTRY, DataError, load_dataset
from vae.datasets_extra import (
    SHAPE_NAMES, SHAPE_POSITIONS, SHAPE_ROTATIONS, SHAPE_SCALES, SHAPES_COUNT, decode_image, default_data_dir,
    folder_dataset_name, generate_shapes, load_folder, parse_folder_argument,
)

# ---------------------------------------------------------------- helpers that write data in the official formats


def write_idx(path: Path, array: np.ndarray) -> None:
    """An uncompressed IDX file: magic 0x00000803 (3-d uint8 images) or 0x00000801 (1-d uint8 labels), big-endian dims."""
    magic = 0x0800 | array.ndim
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_tiny_idx_set(root: Path, folder: str, train: int = 24, test: int = 8, seed: int = 0) -> dict[str, np.ndarray]:
    """A tiny MNIST-format set (all four files, uncompressed) in <root>/<folder>/raw/; returns what was written."""
    rng = np.random.default_rng(seed)
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    written = {}
    for split, count in (("train", train), ("t10k", test)):
        images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
        labels = np.arange(count, dtype=np.uint8) % 10
        write_idx(raw / f"{split}-images-idx3-ubyte", images)
        write_idx(raw / f"{split}-labels-idx1-ubyte", labels)
        written[f"{split}_images"], written[f"{split}_labels"] = images, labels
    return written


def write_tiny_cifar10(root: Path, per_batch: int = 4, seed: int = 0) -> dict[str, np.ndarray]:
    """A tiny CIFAR-10 in torchvision's format: pickled dicts in <root>/cifar-10-batches-py/."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    written = {"train": [], "test": []}
    for name in ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"):
        data = rng.integers(0, 256, size=(per_batch, 3 * 32 * 32), dtype=np.uint8)  # rows: R plane, G plane, B plane
        labels = list(rng.integers(0, 10, size=per_batch))
        with (folder / name).open("wb") as handle:
            pickle.dump({"data": data, "labels": [int(label) for label in labels]}, handle)
        written["test" if name == "test_batch" else "train"].append(data)
    with (folder / "batches.meta").open("wb") as handle:
        pickle.dump({"label_names": list(datasets_extra.TORCHVISION_SETS["cifar10"].label_names)}, handle)
    return {split: np.concatenate(parts) for split, parts in written.items()}


def accept_fake_cifar10(monkeypatch) -> None:
    """torchvision checks each CIFAR-10 file's MD5 against the real one; let the fake files through in tests only."""
    from torchvision.datasets import CIFAR10

    monkeypatch.setattr(CIFAR10, "train_list", [[name, None] for name, _ in CIFAR10.train_list])
    monkeypatch.setattr(CIFAR10, "test_list", [[name, None] for name, _ in CIFAR10.test_list])
    monkeypatch.setattr(CIFAR10, "meta", {**CIFAR10.meta, "md5": None})


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("LATENT_LAB_OFFLINE", "1")


# ---------------------------------------------------------------- torchvision's sets, offline


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
    assert dataset.label_names == datasets_extra.TORCHVISION_SETS[name].label_names
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
    monkeypatch.setattr(datasets_extra, "_reachable", lambda url, seconds=5.0: "codh.rois.ac.jp: Name or service not known")

    def no_download(*args, **kwargs):
        raise AssertionError("download attempted although the network is down")

    monkeypatch.setattr(datasets_extra, "_read_torchvision", no_download)
    with pytest.raises(DataError) as caught:
        load_dataset("kmnist", tmp_path)
    assert str(caught.value).startswith(
        f"Kuzushiji-MNIST is not in {tmp_path}/KMNIST/raw and could not be downloaded "
        "(no network: codh.rois.ac.jp: Name or service not known). Put these files in that folder")


# Downloads that succeed, or fail with an HTTP status or silence, against a local server: tests/test_downloads.py.


def test_a_failed_download_names_the_files_to_place_by_hand(tmp_path, monkeypatch):
    from torchvision.datasets import CIFAR10

    monkeypatch.delenv("LATENT_LAB_OFFLINE", raising=False)
    monkeypatch.setattr(datasets_extra, "_reachable", lambda url, seconds=5.0: None)
    monkeypatch.setattr(CIFAR10, "url", "http://127.0.0.1:9/cifar-10-python.tar.gz")  # nothing listens on port 9
    with pytest.raises(DataError) as caught:
        load_dataset("cifar10", tmp_path)
    assert str(caught.value).startswith(
        f"CIFAR-10 is not in {tmp_path}/cifar-10-batches-py and the download failed "
        "(cifar-10-python.tar.gz: 127.0.0.1: Connection refused). Put these files in that folder")


def test_network_probe_answers_instead_of_hanging():
    # A port nothing listens on, on this machine: refused at once, reported as a reason, not raised.
    reason = datasets_extra._reachable("http://127.0.0.1:9/mnist.gz", seconds=2.0)
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


# ---------------------------------------------------------------- shapes


def test_same_seed_gives_the_same_shapes_and_another_seed_another_order():
    first, again = generate_shapes(400, seed=3), generate_shapes(400, seed=3)
    assert np.array_equal(first.images, again.images)
    assert all(np.array_equal(first.factors[k], again.factors[k]) for k in first.factors)
    other = generate_shapes(400, seed=4)
    assert not np.array_equal(first.images, other.images)


def _combinations(factors: dict[str, np.ndarray]) -> np.ndarray:
    return np.stack([factors[k] for k in ("shape", "scale", "rotation", "x", "y")], axis=1)


def test_every_factor_combination_appears_in_equal_proportion():
    shapes = generate_shapes()
    assert shapes.images.shape == (SHAPES_COUNT, 1, 28, 28) == (20_000, 1, 28, 28)
    combos, counts = np.unique(_combinations(shapes.factors), axis=0, return_counts=True)
    grid = len(SHAPE_NAMES) * len(SHAPE_SCALES) * len(SHAPE_ROTATIONS) * SHAPE_POSITIONS ** 2
    assert len(combos) == grid and set(counts) == {1}
    for name, values in (("shape", range(len(SHAPE_NAMES))), ("scale", SHAPE_SCALES), ("rotation", SHAPE_ROTATIONS)):
        assert {v: int((shapes.factors[name] == v).sum()) for v in values} == {v: SHAPES_COUNT // len(values) for v in values}
    assert np.unique(shapes.factors["x"], return_counts=True)[1].tolist() == [SHAPES_COUNT // SHAPE_POSITIONS] * SHAPE_POSITIONS


def test_twice_the_grid_repeats_each_combination_twice_and_a_sample_never_repeats():
    _, counts = np.unique(_combinations(generate_shapes(2 * SHAPES_COUNT).factors), axis=0, return_counts=True)
    assert set(counts) == {2} and len(counts) == SHAPES_COUNT
    _, counts = np.unique(_combinations(generate_shapes(1000, seed=1).factors), axis=0, return_counts=True)
    assert set(counts) == {1} and len(counts) == 1000


def _pick(shapes, **wanted) -> np.ndarray:
    mask = np.ones(len(shapes.images), dtype=bool)
    for name, value in wanted.items():
        mask &= shapes.factors[name] == value
    (index,) = np.flatnonzero(mask)
    return shapes.images[index, 0]


def test_shapes_are_drawn_with_the_right_area_place_and_soft_edges():
    shapes = generate_shapes()
    radius = 28 / 4  # scale 1.0
    square = _pick(shapes, shape=0, scale=1.0, rotation=0.0, x=12.5, y=15.5)
    # Side sqrt(2) r = 9.9 px; 4 samples per pixel put axis-aligned edges on a quarter-pixel grid.
    assert square.sum() == pytest.approx(2 * radius ** 2, rel=0.05)
    ellipse = _pick(shapes, shape=1, scale=0.5, rotation=72.0, x=16.5, y=10.5)
    assert ellipse.sum() == pytest.approx(np.pi * (0.5 * radius) * (0.25 * radius), rel=0.03)
    triangle = _pick(shapes, shape=2, scale=1.0, rotation=36.0, x=14.5, y=14.5)
    assert triangle.sum() == pytest.approx(3 * np.sqrt(3) / 4 * radius ** 2, rel=0.02)
    # The centre of mass of a square sits at its (x, y); x from the left, y from the bottom, in pixels.
    rows, columns = np.mgrid[0:28, 0:28] + 0.5
    assert (square * columns).sum() / square.sum() == pytest.approx(12.5, abs=0.01)
    assert 28 - (square * rows).sum() / square.sum() == pytest.approx(15.5, abs=0.01)
    # Rotated edges are anti-aliased: partly covered pixels exist; nothing leaves [0, 1] or touches the border.
    assert ((ellipse > 0.05) & (ellipse < 0.95)).any()
    assert shapes.images.min() == 0.0 and shapes.images.max() == 1.0
    assert shapes.images[:, 0, [0, -1], :].max() == 0 and shapes.images[:, 0, :, [0, -1]].max() == 0


def test_shapes_in_the_registry_carry_every_factor_with_the_shape_as_label():
    dataset = load_dataset("shapes")
    assert dataset.image_shape == (1, 28, 28)
    assert len(dataset.train_images) == 18_000 and len(dataset.test_images) == 2_000
    assert dataset.label_names == SHAPE_NAMES
    assert set(dataset.train_factors) == set(dataset.test_factors) == {"shape", "scale", "rotation", "x", "y"}
    assert torch.equal(dataset.train_labels, dataset.train_factors["shape"])
    assert torch.bincount(dataset.test_labels).tolist() == [500] * 4
    assert all(len(v) == 18_000 for v in dataset.train_factors.values())


# ---------------------------------------------------------------- folder:PATH


def png_bytes(picture: Image.Image, format: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format=format)
    return buffer.getvalue()


@pytest.fixture
def picture_folder(tmp_path) -> Path:
    """Two labels of pictures in mixed modes and sizes, one corrupt file and one that is not an image."""
    root = tmp_path / "pictures"
    (root / "cats").mkdir(parents=True)
    (root / "dogs" / "puppies").mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8), "RGB").save(root / "cats" / "a.png")
    Image.fromarray(rng.integers(0, 256, (50, 50), dtype=np.uint8), "L").save(root / "cats" / "b.jpg", quality=90)
    rgba = np.zeros((20, 20, 4), dtype=np.uint8)
    rgba[..., 3] = 0  # fully transparent: lies on white
    Image.fromarray(rgba, "RGBA").save(root / "cats" / "c.png")
    Image.fromarray(rng.integers(0, 256, (64, 48, 3), dtype=np.uint8), "RGB").save(root / "dogs" / "d.jpeg")
    Image.fromarray(rng.integers(0, 4, (16, 16), dtype=np.uint8), "P").save(root / "dogs" / "puppies" / "e.gif")
    Image.fromarray(np.full((10, 10), 65535, dtype=np.uint16)).save(root / "dogs" / "f.png")  # 16-bit white
    Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8), "L").save(root / "dogs" / "g.bmp")
    (root / "cats" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(200)))
    (root / "dogs" / "notes.txt").write_text("not a picture")
    (root / "empty").mkdir()
    return root


def test_folder_reads_mixed_pictures_skips_and_counts_the_corrupt_one(picture_folder):
    dataset = load_folder(str(picture_folder))
    assert dataset.image_shape == (1, 28, 28)
    assert dataset.label_names == ("cats", "dogs")
    assert len(dataset.train_images) + len(dataset.test_images) == 7
    assert dataset.notes == ("Skipped 1 of 8 image file(s) that could not be read: cats/broken.png. "
                             "Subfolders with no images were left out: empty.")
    everything = torch.cat([dataset.train_images, dataset.test_images])
    assert everything.min() >= 0 and everything.max() <= 1
    labels = torch.cat([dataset.train_labels, dataset.test_labels])
    assert torch.bincount(labels).tolist() == [3, 4]
    # A seeded split: the same folder splits the same way, with each label in both parts.
    again = load_folder(str(picture_folder))
    assert torch.equal(dataset.test_images, again.test_images)
    assert sorted(set(dataset.test_labels.tolist())) == [0, 1]


def test_folder_options_choose_size_and_colour(picture_folder):
    dataset = load_folder(f"{picture_folder}?size=32&color=rgb")
    assert dataset.image_shape == (3, 32, 32)
    assert load_folder(f"{picture_folder}?size=64").image_shape == (1, 64, 64)
    assert dataset.name == f"folder:{picture_folder}?size=32&color=rgb"


@pytest.mark.parametrize("argument, message", [
    ("{root}?size=30", "Image size must be one of 28, 32, 64, not '30'."),
    ("{root}?color=cmyk", "Colour must be 'gray' or 'rgb', not 'cmyk'."),
    ("{root}?zoom=2", "Unknown folder option 'zoom' in '?zoom=2' at the end of '{root}?zoom=2'; the options are size "
                      "(28, 32, 64) and color (gray or rgb). If the '?' is part of the folder's name, put the options "
                      "after it: folder:{root}?zoom=2?size=28."),
    ("{root}\n?size=32", "The folder path '{root}\\n' contains a control character (U+000A, e.g. a pasted line break or "
                         "tab); type the path again without it."),
    ("{root}\t", "The folder path '{root}\\t' contains a control character (U+0009, e.g. a pasted line break or tab); "
                 "type the path again without it."),
    ("  ?size=32", "Name the image folder before the options '?size=32', e.g. folder:/home/me/pictures?size=32."),
    ("{root}?size=28&size=32", "The folder option 'size' is given twice in '?size=28&size=32'."),
    ("", "Name the image folder after 'folder:', e.g. folder:/home/me/pictures?size=32&color=rgb."),
])
def test_bad_folder_options_are_clear_errors(picture_folder, argument, message):
    with pytest.raises(DataError) as caught:
        load_folder(argument.format(root=picture_folder))
    assert str(caught.value) == message.format(root=picture_folder)


@pytest.mark.parametrize("folder_name", ["what?", "a?b", "scan?size=32", "trailing space ", " leading space", "x&y=1 #2 %20"])
def test_a_typed_folder_path_survives_intact(tmp_path, folder_name):
    folder = tmp_path / folder_name
    folder.mkdir()
    for i in range(2):
        Image.new("L", (9, 9), 100 * i).save(folder / f"{i}.png")
    for size, color in ((28, "gray"), (32, "rgb")):
        name = folder_dataset_name(folder, size, color)
        dataset = load_folder(name.removeprefix("folder:"))
        assert dataset.label_names == (folder_name,) and dataset.image_shape == ((1 if color == "gray" else 3), size, size)
        assert parse_folder_argument(name.removeprefix("folder:")).path == folder
    # Typed by hand with the options after it, as the README shows, the '?' in the name survives too.
    assert parse_folder_argument(f"{folder}?size=64").path == folder


def test_a_missing_folder_typed_with_a_space_at_the_end_says_so(tmp_path):
    (tmp_path / "pics").mkdir()
    with pytest.raises(DataError, match=r"^The image folder '.*pics ' does not exist \(note the space at either end"):
        load_folder(f"{tmp_path / 'pics'} ")


def test_folder_names_round_trip_through_the_parser(tmp_path):
    assert folder_dataset_name(tmp_path) == f"folder:{tmp_path}"
    name = folder_dataset_name(tmp_path / "my pics", size=64, color="rgb")
    assert name == f"folder:{tmp_path}/my pics?size=64&color=rgb"
    assert parse_folder_argument(name.removeprefix("folder:")) == datasets_extra.FolderRequest(tmp_path / "my pics", 64, "rgb")


def test_flat_folder_is_one_label_named_after_it(tmp_path):
    flat = tmp_path / "holiday"
    flat.mkdir()
    for i in range(3):
        Image.new("RGB", (12 + i, 9), (40 * i, 0, 0)).save(flat / f"{i}.png")
    dataset = load_folder(str(flat))
    assert dataset.label_names == ("holiday",)
    assert len(dataset.train_images) == 2 and len(dataset.test_images) == 1
    assert dataset.notes == ""


def test_folder_problems_are_clear_errors(tmp_path, monkeypatch):
    with pytest.raises(DataError, match=r"^The image folder .*nowhere does not exist\.$"):
        load_folder(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"^The image folder .*empty is empty\. Put images in it"):
        load_folder(str(tmp_path / "empty"))
    (tmp_path / "texts" / "a").mkdir(parents=True)
    (tmp_path / "texts" / "a" / "readme.txt").write_text("hello")
    with pytest.raises(DataError, match=r"^No images in .*texts or its subfolders \(looked for \.jpg, \.jpeg, \.png"):
        load_folder(str(tmp_path / "texts"))
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(DataError, match=r"file\.png is a file, not a folder"):
        load_folder(str(tmp_path / "file.png"))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"not a png")
    (tmp_path / "bad" / "y.jpg").write_bytes(b"")
    with pytest.raises(DataError, match=r"needs at least 2 readable images; only 0 of 2 could be read\. First problem: x\.png"):
        load_folder(str(tmp_path / "bad"))


def test_a_symlink_loop_in_the_folder_is_walked_once(tmp_path):
    root = tmp_path / "loop"
    (root / "a").mkdir(parents=True)
    for i in range(2):
        Image.new("L", (9, 9), 100 * i).save(root / "a" / f"{i}.png")
    (root / "a" / "again").symlink_to(root / "a", target_is_directory=True)
    dataset = load_folder(str(root))
    assert len(dataset.train_images) + len(dataset.test_images) == 2


def test_unreadable_folder_is_a_clear_error(tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    real_iterdir = Path.iterdir

    def refuse(self):
        if self == locked:  # what the OS answers for a folder the user may not list (root ignores chmod)
            raise PermissionError(13, "Permission denied", str(self))
        return real_iterdir(self)

    monkeypatch.setattr(Path, "iterdir", refuse)
    with pytest.raises(DataError) as caught:
        load_folder(str(locked))
    assert str(caught.value) == f"Cannot read {locked}: permission denied."


def test_decode_scales_16_bit_and_lays_transparency_on_white(tmp_path):
    sixteen = np.array([[0, 1000], [32768, 65535]], dtype=np.uint16)
    Image.fromarray(sixteen).save(tmp_path / "deep.png")
    pixels = decode_image(tmp_path / "deep.png", 28, 1)
    assert pixels.shape == (1, 28, 28) and pixels.max() == 1.0 and pixels.min() == 0.0
    Image.new("RGBA", (5, 5), (255, 0, 0, 0)).save(tmp_path / "clear.png")
    assert decode_image(tmp_path / "clear.png", 32, 3).min() == 1.0
    assert parse_folder_argument("~/x?size=64&color=rgb").path == Path("~/x").expanduser()
