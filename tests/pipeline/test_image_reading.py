"""Reading the first frame from a file: EXIF orientation, truncated and non-image files."""

import io

import numpy as np
import pytest
from PIL import Image

from camworld.errors import UserError
from camworld.pipeline_inputs import load_image, read_image


def oriented_png(pixels: np.ndarray, orientation: int) -> bytes:
    """A PNG of `pixels` whose EXIF says the viewer must rotate it (6: 90° clockwise)."""
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", exif=exif)
    return buffer.getvalue()


def test_exif_orientation_turns_the_image_upright(tmp_path):
    pixels = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 10
    path = tmp_path / "phone.png"
    path.write_bytes(oriented_png(pixels, 6))
    upright = load_image(path)
    assert upright.shape == (3, 2, 3)
    np.testing.assert_array_equal(upright, np.rot90(pixels, k=-1))  # 6 = shown rotated 90° clockwise
    np.testing.assert_array_equal(read_image(io.BytesIO(path.read_bytes()), "upload"), upright)


def test_grey_and_alpha_images_come_back_as_rgb(tmp_path):
    for mode in ("L", "RGBA", "P"):
        path = tmp_path / f"{mode}.png"
        Image.new(mode, (5, 4)).save(path)
        image = load_image(path)
        assert image.shape == (4, 5, 3) and image.dtype == np.uint8


def test_truncated_and_fake_files_are_one_line_errors(tmp_path):
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buffer, "PNG")
    cut = tmp_path / "cut.png"
    cut.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(UserError, match=r"^image .*cut\.png: not a readable image \(") as err:
        load_image(cut)
    assert "\n" not in str(err.value)
    with pytest.raises(UserError, match=r"^upload: not a readable image"):
        read_image(io.BytesIO(b"GIF89a and then nothing"), "upload")
