"""Students' uploaded pictures: layouts, the limits, hostile zips, and a data set that outlives the session."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from image_samples import pet_files, picture, zipped
from vae.datasets import registry
from vae.datasets import DataError, load_dataset
from vae.settings import Settings, SettingsError, load_settings
from vae.student_data import UploadError, UploadLimits, prune_unused, read_zip, store_upload


@pytest.fixture
def uploads(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "uploads"
    monkeypatch.setenv("LATENT_LAB_UPLOADS", str(root))
    for name in ("MAX_FILES", "MAX_MB", "MAX_IMAGE_MPX", "MAX_TOTAL_MPX", "KEEP_HOURS"):
        monkeypatch.delenv(f"LATENT_LAB_UPLOAD_{name}", raising=False)
    registry._load_cached.cache_clear()
    yield root
    registry._load_cached.cache_clear()


def stored(root: Path) -> list[str]:
    """What the uploads folder holds besides its lock file."""
    return sorted(p.name for p in root.iterdir() if p.name != ".lock") if root.exists() else []


def test_a_folder_with_label_subfolders_becomes_a_data_set_any_page_can_load(uploads):
    pictures = store_upload(pet_files(), "pictures")
    assert pictures.title == "pets" and pictures.labels == (("cats", 5), ("dogs", 4))
    assert any("broken.png" in note for note in pictures.notes) and any("readme.txt" in note for note in pictures.notes)
    registry._load_cached.cache_clear()  # another session (or a restart) loads it by name alone
    dataset = load_dataset(pictures.dataset_name())
    assert dataset.label_names == ("cats", "dogs") and dataset.image_shape == (1, 28, 28)
    assert len(dataset.train_images) + len(dataset.test_images) == 9
    assert float(dataset.train_images.min()) >= 0 and float(dataset.train_images.max()) <= 1
    colour = load_dataset(pictures.dataset_name(32, "rgb"))
    assert colour.image_shape == (3, 32, 32)
    assert load_dataset(f"upload:{pictures.key.upper()}?size=28&color=gray") is dataset  # one canonical name


def test_a_flat_folder_is_one_label_and_a_zip_of_the_same_pictures_is_stored_once(uploads):
    flat = [(f"holiday/{i}.png", picture(i)) for i in range(3)]
    from_folder = store_upload(flat, "pictures")
    assert from_folder.labels == (("holiday", 3),)
    from_zip = store_upload(read_zip(zipped(flat)), "holiday")
    assert from_zip.key == from_folder.key
    assert stored(uploads) == [from_folder.key]


@pytest.mark.parametrize("member, message", [
    ("/etc/cron.d/evil.png", "absolute path"),
    ("../../outside.png", "outside its folder"),
    ("pets/../../outside.png", "outside its folder"),
    ("C:\\Windows\\evil.png", "absolute path"),
    ("pets\\..\\..\\outside.png", "outside its folder"),
])
def test_zip_members_leading_outside_are_refused_and_nothing_is_written(uploads, tmp_path, member, message):
    with pytest.raises(UploadError, match=message):
        store_upload(read_zip(zipped(pet_files() + [(member, picture(1))])), "evil")
    assert stored(uploads) == []
    assert not (tmp_path / "outside.png").exists()


def test_the_same_paths_from_a_folder_upload_are_refused_too(uploads):
    with pytest.raises(UploadError, match="outside its folder"):
        store_upload(pet_files() + [("pets/../../x.png", picture(1))], "pictures")
    assert stored(uploads) == []


def test_a_symlink_in_a_zip_is_refused(uploads):
    link = (b"/etc/passwd", (stat.S_IFLNK | 0o777) << 16)
    with pytest.raises(UploadError, match="symbolic link"):
        read_zip(zipped(pet_files(), **{"pets/cats/link.png": link}))


def test_a_zip_bomb_is_refused_before_it_is_inflated(uploads):
    with pytest.raises(UploadError, match="zip bomb"):
        read_zip(zipped([("pets/a.png", picture(1)), ("pets/b.png", b"\0" * (40 * 2**20))]))


def test_a_zip_whose_pictures_unpack_past_the_limit_is_refused(uploads, monkeypatch):
    monkeypatch.setenv("LATENT_LAB_UPLOAD_MAX_MB", "1")
    noise = [(f"pets/{i}.bin.png", os.urandom(300_000)) for i in range(4)]  # incompressible: no bomb, just too big
    with pytest.raises(UploadError, match="unpacks to 1.1 MB; the limit is 1 MB"):
        read_zip(zipped(noise), UploadLimits.configured())


def test_a_zip_lying_about_its_sizes_is_caught_while_reading(uploads):
    archive = bytearray(zipped([("pets/a.png", picture(1)), ("pets/b.png", picture(2))]))
    # Shrink b.png's declared size in the central directory: reading must not trust it.
    directory = archive.rfind(b"PK\x01\x02")
    declared = directory + 24
    archive[declared:declared + 4] = (10).to_bytes(4, "little")
    with pytest.raises(UploadError):
        read_zip(bytes(archive))


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated", b"just text"])
def test_something_that_is_not_a_zip_is_one_clear_error(uploads, content):
    with pytest.raises(UploadError, match="not a zip file"):
        read_zip(content)


def test_the_limits_come_from_the_environment(uploads, monkeypatch):
    monkeypatch.setenv("LATENT_LAB_UPLOAD_MAX_FILES", "4")
    with pytest.raises(UploadError, match="More than 4 pictures"):
        store_upload(pet_files(), "pictures")
    monkeypatch.setenv("LATENT_LAB_UPLOAD_MAX_FILES", "100")
    monkeypatch.setenv("LATENT_LAB_UPLOAD_MAX_IMAGE_MPX", "1")
    with pytest.raises(UploadError, match="big.png' has 1.2 million pixels; the limit is 1 million"):
        store_upload(pet_files() + [("pets/cats/big.png", picture(3, (1200, 1000)))], "pictures")
    monkeypatch.setenv("LATENT_LAB_UPLOAD_MAX_IMAGE_MPX", "12")
    monkeypatch.setenv("LATENT_LAB_UPLOAD_MAX_TOTAL_MPX", "1")
    with pytest.raises(UploadError, match="more than 1 million pixels together"):
        store_upload([(f"pets/{i}.png", picture(i, (800, 800))) for i in range(2)], "pictures")
    assert stored(uploads) == []
    monkeypatch.setenv("LATENT_LAB_UPLOAD_MAX_FILES", "lots")  # as wrong as any other setting: named, not guessed
    with pytest.raises(SettingsError, match="upload_max_files must be a number, not 'lots'"):
        store_upload(pet_files(), "pictures")
    assert load_settings({"upload_max_mb": 3}, environ={}).upload_max_mb == 3  # secrets.toml can set them too
    assert UploadLimits.from_settings(Settings()) == UploadLimits()


def test_fewer_than_two_readable_pictures_is_an_error_that_names_the_bad_file(uploads):
    with pytest.raises(UploadError, match="At least 2 readable pictures.*fake.png"):
        store_upload([("p/a.png", picture(1)), ("p/fake.png", b"GIF89a nope")], "p")
    with pytest.raises(UploadError, match="No pictures found"):
        store_upload([("p/a.txt", b"text")], "p")
    assert stored(uploads) == []


def test_uploads_no_model_uses_are_pruned_after_the_keep_time_and_loading_one_says_so(uploads):
    used = store_upload([(f"a/{i}.png", picture(i)) for i in range(3)], "a")
    unused = store_upload([(f"b/{i}.png", picture(i + 5)) for i in range(3)], "b")
    old = time.time() - 3 * 86400
    for key in (used.key, unused.key):
        os.utime(uploads / key, (old, old))
    removed = prune_unused(uploads, 86400, in_use=[used.dataset_name(32, "rgb")])
    assert removed == [unused.key] and stored(uploads) == [used.key]
    with pytest.raises(DataError, match="no longer on this server") as raised:
        load_dataset(unused.dataset_name())
    assert str(uploads) not in str(raised.value)


def test_a_stale_staging_folder_left_by_a_killed_upload_is_removed(uploads):
    store_upload([(f"a/{i}.png", picture(i)) for i in range(2)], "a")
    leftover = uploads / ".incoming-deadbeef"
    leftover.mkdir()
    old = time.time() - 2 * 3600
    os.utime(leftover, (old, old))
    store_upload([(f"b/{i}.png", picture(i + 3)) for i in range(2)], "b")
    assert not leftover.exists()
    assert not [p for p in uploads.iterdir() if p.name.startswith(".incoming")]


@pytest.mark.parametrize("name", ["upload:", "upload:../../etc", "upload:0123?size=28", "upload:" + "g" * 24])
def test_names_that_are_not_an_upload_key_are_refused(uploads, name):
    with pytest.raises(DataError, match="does not name an upload"):
        load_dataset(name)


def test_a_label_named_like_the_manifest_and_a_full_disk_are_handled(uploads, monkeypatch):
    pictures = store_upload([(f"p/upload.json/{i}.png", picture(i)) for i in range(2)] + [(f"p/x/{i}.png", picture(i + 4)) for i in range(2)], "p")
    assert dict(pictures.labels) == {"upload.json": 2, "x": 2}
    assert load_dataset(pictures.dataset_name()).label_names == ("upload.json", "x")

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(UploadError, match="could not store the pictures \\(No space left on device\\)"):
        store_upload([(f"q/{i}.png", picture(i + 7)) for i in range(2)], "q")
    assert stored(uploads) == [pictures.key]


def test_the_picture_extensions_are_image_folders_own():
    from torchvision.datasets.folder import IMG_EXTENSIONS

    from vae.datasets.folder import image_extensions

    assert image_extensions() == (*IMG_EXTENSIONS, ".gif")


@pytest.mark.parametrize("options, message", [
    ("size=30", "Image size must be one of 28, 32, 64, not '30'."),
    ("color=cmyk", "Colour must be 'gray' or 'rgb', not 'cmyk'."),
    ("zoom=2", "Unknown upload option 'zoom' in 'upload:{key}?zoom=2'; the options are size (28, 32, 64) and color "
               "(gray or rgb)."),
    ("size=28&size=32", "The upload option 'size' is given twice in '?size=28&size=32'."),  # was: the last one won
])
def test_an_upload_name_with_bad_options_is_refused_as_a_folder_name_is(uploads, options, message):
    key = "0" * 24
    with pytest.raises(DataError) as caught:
        load_dataset(f"upload:{key}?{options}")
    assert str(caught.value) == message.format(key=key)


def test_upload_options_are_read_as_folder_options_are(uploads):
    from vae.datasets.names import canonical_upload_argument

    key = "0" * 24
    assert canonical_upload_argument(f"{key}?color=%52GB&size=32") == f"{key}?size=32&color=rgb"  # was refused
    assert canonical_upload_argument(f"{key}?size=28&color=gray") == key
