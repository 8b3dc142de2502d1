"""`folder:PATH` data sets (vae.datasets.folder): the user's pictures, their options, and every problem as a sentence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vae.datasets import DataError, folder_dataset_name, parse_folder_argument
from vae.datasets.decode import decode_image
from vae.datasets.folder import load_folder
from vae.datasets.names import FolderRequest


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
    # Typed by hand with the options after it, as docs/data-sets.md shows, the '?' in the name survives too.
    assert parse_folder_argument(f"{folder}?size=64").path == folder


def test_a_missing_folder_typed_with_a_space_at_the_end_says_so(tmp_path):
    (tmp_path / "pics").mkdir()
    with pytest.raises(DataError, match=r"^The image folder '.*pics ' does not exist \(note the space at either end"):
        load_folder(f"{tmp_path / 'pics'} ")


def test_folder_names_round_trip_through_the_parser(tmp_path):
    assert folder_dataset_name(tmp_path) == f"folder:{tmp_path}"
    name = folder_dataset_name(tmp_path / "my pics", size=64, color="rgb")
    assert name == f"folder:{tmp_path}/my pics?size=64&color=rgb"
    assert parse_folder_argument(name.removeprefix("folder:")) == FolderRequest(tmp_path / "my pics", 64, "rgb")


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
