"""Photos and drawings as a class makes them: uneven light, any drawing size and brush, non-digits, odd pixels."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from conftest import SHIPPED
from image_samples import MNIST, drawn_dot, drawn_seven, encode, lit_unevenly, not_digit_like, paper_digit
from vae.checkpoints import load_checkpoint
from vae.images import ImageInputError, prepare_upload
from vae.losses import elbo_parts

MNIST_INK = (0.079, 0.190)  # mnist5k: 10th and 90th percentile of the share of pixels above 0.5


@pytest.fixture(scope="module")
def neg_elbo():
    """-ELBO (nats per image) of a prepared input under the shipped conv model, as the Upload page scores it."""
    model = load_checkpoint(SHIPPED / "mnist5k-conv-z16").model

    @torch.no_grad()
    def score(x: torch.Tensor) -> float:
        return float(elbo_parts(model, x, sample=False).total[0])

    return score


@pytest.mark.parametrize("light", ["gradient", "vignette", "shadow"])
def test_uneven_light_gives_the_input_and_score_of_even_light(light, neg_elbo):
    clean = prepare_upload(encode(paper_digit()), MNIST)
    photo = prepare_upload(encode(lit_unevenly(paper_digit(), light)), MNIST, f"{light}.png")
    assert (photo.x - clean.x).abs().mean() < 0.02  # no grey wedge, no shadow kept in the crop
    assert photo.warnings == ()
    assert neg_elbo(photo.x) == pytest.approx(neg_elbo(clean.x), abs=3.0)
    assert "shadows and uneven light drop out" in photo.steps[3].detail


@pytest.mark.parametrize("kind", sorted(not_digit_like()))
def test_what_remains_that_is_not_digit_like_is_said(kind):
    prepared = prepare_upload(encode(not_digit_like()[kind]), MNIST, kind)
    assert len(prepared.warnings) == 1
    assert prepared.x.shape == (1, 1, 28, 28)  # still scored: the warning is beside the score


def test_a_clean_digit_and_a_drawing_get_no_warning():
    assert prepare_upload(encode(paper_digit()), MNIST).warnings == ()
    assert prepare_upload(drawn_seven(180), MNIST).warnings == ()


@pytest.mark.parametrize("height, brush", [(60, 18), (100, 18), (250, 18), (180, 6), (180, 40)])
def test_a_drawing_becomes_the_same_input_whatever_its_size_and_brush(height, brush, neg_elbo):
    mid_size = prepare_upload(drawn_seven(180, 18), MNIST).x
    drawn = prepare_upload(drawn_seven(height, brush), MNIST, "drawing")
    ink = float((drawn.x > 0.5).float().mean())
    assert MNIST_INK[0] <= ink <= MNIST_INK[1], f"ink on {ink:.0%} of pixels; MNIST: 8% to 19%"
    assert (drawn.x - mid_size).abs().mean() < 0.035
    assert neg_elbo(drawn.x) == pytest.approx(neg_elbo(mid_size), abs=8.0)
    assert "redrawn 3.0 wide" in drawn.steps[-2].detail


@pytest.mark.parametrize("data", [drawn_dot(18), drawn_dot(40), drawn_seven(30, 18)], ids=["dot", "big dot", "tiny seven"])
def test_a_dot_is_refused_as_too_small_to_read(data):
    with pytest.raises(ImageInputError, match=r"^drawing: The mark is too small to read"):
        prepare_upload(data, MNIST, "drawing")


def test_a_solid_blob_is_refused_as_not_a_written_digit():
    blob = Image.new("L", (200, 200), 235)
    ImageDraw.Draw(blob).ellipse([60, 60, 130, 130], fill=20)
    with pytest.raises(ImageInputError, match="solid blob"):
        prepare_upload(encode(blob), MNIST, "blob.png")


def float_digit(stroke: float, background: float = 0.0) -> bytes:
    """A float (mode F) TIFF of the paper digit: `stroke` where the ink is, `background` elsewhere."""
    ink = np.asarray(paper_digit()) < 128
    return encode(Image.fromarray(np.where(ink, stroke, background).astype(np.float32), "F"), "TIFF")


@pytest.mark.parametrize("stroke, background", [(np.inf, 0.0), (np.inf, np.nan), (1.0, -np.inf), (np.inf, -np.inf),
                                                (np.inf, 1.0), (-np.inf, 0.0), (np.nan, 0.0), (np.inf, 3e38)])
def test_a_float_tiff_with_infinite_strokes_is_the_digit_and_raises_no_warning(stroke, background):
    reference = prepare_upload(float_digit(1.0), MNIST).x
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        prepared = prepare_upload(float_digit(stroke, background), MNIST, "inf.tif")
    assert (prepared.x - reference).abs().mean() < 0.02
    assert "infinite or not a number" in prepared.steps[0].detail


@pytest.mark.parametrize("stroke, background", [(0.0, -1.0), (-5.0, 0.0), (1.0, -1e6)])
def test_a_float_tiff_with_negative_values_keeps_its_digit(stroke, background):
    """Float pixels are scaled into 0..1 from their own range, not clipped at 0 (which blanks them)."""
    reference = prepare_upload(float_digit(1.0), MNIST).x
    prepared = prepare_upload(float_digit(stroke, background), MNIST, "negative.tif")
    assert (prepared.x - reference).abs().mean() < 0.02


def test_colour_models_are_not_inverted_and_get_no_stroke_recipe():
    prepared = prepare_upload(drawn_seven(180), (3, 32, 32), "drawing", recipe="colour")
    assert [step.title for step in prepared.steps] == ["As uploaded", "To RGB", "Crop to shape", "Resize"]
    assert prepared.x[0, :, 0, 0].min() > 0.95  # the white canvas stays white


@pytest.mark.parametrize("pen", [4, 16, 40])
def test_a_plain_one_is_a_stroke_redrawn_at_mnist_width(pen):
    # A bar filling its own crop from side to side: its width is measured against the paper beyond the crop.
    one = Image.new("L", (200, 200), 235)
    ImageDraw.Draw(one).line([(100, 30), (100, 170)], fill=20, width=pen)
    digit = prepare_upload(encode(one), MNIST, "one.png").x[0, 0].numpy()
    assert 2 <= (digit[14] > 0.5).sum() <= 4  # about 3 pixels across, like MNIST's strokes
    assert 19 <= (digit[:, 14] > 0.5).sum() <= 21  # 20 pixels tall: MNIST's box


@pytest.mark.parametrize("size, pen", [(200, 60), (120, 30), (400, 100)])
def test_a_bold_marker_in_a_tight_crop_keeps_all_its_ink(size, pen):
    """Strokes a quarter of the picture wide or more: the paper was estimated in windows narrower than
    the stroke, so the middle of each stroke was taken for paper and a 7 came out as a broken scrawl."""
    from vae.strokes import isolate

    picture = Image.new("L", (size, size), 240)
    margin = 0.15 * size
    ImageDraw.Draw(picture).line([(margin, margin), (size - margin, margin), (0.4 * size, size - margin)],
                                 fill=20, width=pen, joint="curve")
    truth = np.asarray(picture) < 128
    found = isolate(np.asarray(picture, dtype=np.float32) / 255)
    assert abs(int(found.mask.sum()) - int(truth.sum())) < 0.02 * truth.sum()
