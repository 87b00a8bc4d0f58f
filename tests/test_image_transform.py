"""transform_image on real files: every file passes or is rejected with a reason, orientation,
colour modes, img2dataset's resize modes (compared with its own Resizer), JPEG draft decoding, encoding."""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image, ImageFile, ImageOps

from filters.image_config import ImageConfig, ResizeConfig
from filters.image_probe import probe_image
from filters.image_rules import check_image_rules
from filters.image_transform import UPRIGHT, EncodedImage, plan_resize, transform_image
from filters.record import Dropped

from conftest import realdata_cases, realdata_table

PROPERTIES = ("images", "IMAGE_PROPERTIES.tsv")
ROWS = realdata_table(*PROPERTIES)
PERMISSIVE = ImageConfig(formats=["jpeg", "png", "webp", "gif", "avif", "bmp", "tiff", "ico"], min_side=1,
                         max_aspect_ratio=1000.0, allow_animated=True)
LOSSLESS = ResizeConfig(resize_mode="no", encode_format="png", encode_quality=1)
RESIZE_TEST_IMAGES = ["123_456.jpg", "208_495.jpg", "321_421.jpg", "389_535.jpg", "416_264.jpg",
                      "456_123.jpg", "524_316.jpg"]
MODES = ["no", "keep_ratio", "center_crop", "border", "keep_ratio_largest"]
# The TSV says these load, but a fresh Image.open().load() raises: its generator called getexif()
# first, which (for PNG) decodes the file, fails, and leaves a half-filled image that a second
# load() accepts. Strictly decoded they are truncated, so they are rejects.
BROKEN_DESPITE_TSV = {"pillow/broken_data_stream.png", "pillow/truncated_end_chunk.png"}


def pipeline(data: bytes, resize: ResizeConfig | None = None) -> EncodedImage:
    """probe -> rules (PERMISSIVE) -> transform, as the image stage chains them."""
    info = probe_image(data)
    assert check_image_rules(info, PERMISSIVE) is None
    return transform_image(data, info, resize or ResizeConfig(), max_pixels=PERMISSIVE.max_pixels)


def pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as decoded:
        assert decoded.mode == "RGB"
        return np.asarray(decoded, dtype=np.int16)


def mean_abs_diff(a, b) -> float:
    return float(np.abs(np.asarray(a, dtype=np.int16) - np.asarray(b, dtype=np.int16)).mean())


def expected_outcome(row: dict) -> tuple[str, set[str]]:
    """(stage, reasons) a file must end with; ("passed", {}) when it must come through."""
    if row["load"].startswith("OPEN_ERROR"):
        return "probe", {"unreadable", "decompression_bomb"}
    if row["load"].startswith("NOT_LOADED"):
        return "probe/rules", {"too_many_pixels"}
    if row["load"].startswith("LOAD_ERROR") or row["path"] in BROKEN_DESPITE_TSV:
        return "transform", {"decode_error"}
    return "passed", set()


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
@pytest.mark.parametrize("row", realdata_cases(ROWS, *PROPERTIES))
def test_every_file_passes_or_is_rejected_with_a_reason(realdata, row):
    data = realdata("images", row["path"]).read_bytes()
    stage, reasons = expected_outcome(row)
    try:
        info = probe_image(data)
    except Dropped as dropped:
        assert stage in ("probe", "probe/rules") and dropped.reason in reasons, dropped
        return
    verdict = check_image_rules(info, PERMISSIVE)
    if verdict:
        assert stage == "probe/rules" and verdict[0] in reasons, verdict
        return
    assert stage in ("transform", "passed"), f"expected a reject at {stage}"
    try:
        out = transform_image(data, info, ResizeConfig(), max_pixels=PERMISSIVE.max_pixels)
    except Dropped as dropped:
        assert stage == "transform" and dropped.reason in reasons, dropped
        return
    assert stage == "passed", f"expected {reasons} at {stage}"
    assert (out.width, out.height, out.ext) == (256, 256, "jpg")
    assert (out.original_width, out.original_height) == (info.width, info.height)
    assert pixels(out.data).shape == (256, 256, 3)


# --- EXIF orientation -------------------------------------------------------------------------------

def structure_diff(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference once each image's mean colour is removed (sharp's Landscape_1 was
    exported brighter than Landscape_2..8)."""
    x, y = (np.asarray(im, dtype=np.float32) for im in (a, b))
    return float(np.abs((x - x.mean(axis=(0, 1))) - (y - y.mean(axis=(0, 1)))).mean())


def assert_upright_like(out: EncodedImage, reference: EncodedImage, tolerance: float) -> None:
    """``out`` matches ``reference`` within ``tolerance``, and clearly better than any other of the
    flips and rotations of ``reference`` does."""
    got, ref = (Image.open(io.BytesIO(e.data)).convert("RGB") for e in (out, reference))
    assert got.size == ref.size
    same = structure_diff(got, ref)
    assert same < tolerance
    for transpose in Image.Transpose:
        turned = ref.transpose(transpose)
        if turned.size == got.size:
            assert structure_diff(got, turned) > same + 10, transpose


ORIENTATION_CONFIGS = [LOSSLESS, replace(LOSSLESS, resize_mode="center_crop", image_size=255),
                       replace(LOSSLESS, resize_mode="border", image_size=301)]


@pytest.mark.parametrize("config", ORIENTATION_CONFIGS, ids=["no", "center_crop", "border"])
@pytest.mark.parametrize("name", [f"Landscape_{i}" for i in range(2, 9)] + ["Portrait_6", "Portrait_8"])
def test_sharp_orientations_come_out_upright(realdata, name, config):
    base = "Landscape_1" if name.startswith("Landscape") else "Portrait_1"
    reference = pipeline(realdata("images", "sharp", f"{base}.jpg").read_bytes(), config)
    out = pipeline(realdata("images", "sharp", f"{name}.jpg").read_bytes(), config)
    assert (out.original_width, out.original_height) == (reference.original_width, reference.original_height)
    assert_upright_like(out, reference, tolerance=10)


@pytest.mark.parametrize("orientation", range(2, 9))
def test_hopper_orientations_come_out_upright(realdata, orientation):
    reference = pipeline(realdata("images", "pillow", "hopper.jpg").read_bytes(), LOSSLESS)
    turned = realdata("images", "pillow", f"hopper_orientation_{orientation}.jpg").read_bytes()
    out = pipeline(turned, LOSSLESS)
    assert_upright_like(out, reference, tolerance=10)


def stored_with_orientation(upright: Image.Image, orientation: int) -> bytes:
    """PNG bytes whose stored pixels, turned by EXIF ``orientation``, show ``upright``."""
    turn = UPRIGHT.get(orientation)
    undo = {Image.Transpose.ROTATE_90: Image.Transpose.ROTATE_270,
            Image.Transpose.ROTATE_270: Image.Transpose.ROTATE_90}.get(turn, turn)  # the rest undo themselves
    stored = upright.transpose(undo) if undo is not None else upright
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = io.BytesIO()
    stored.save(out, "PNG", exif=exif)
    return out.getvalue()


@pytest.mark.parametrize("mode", ["center_crop", "border", "keep_ratio"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_crop_box_mapped_into_stored_pixels_is_exact(realdata, orientation, mode):
    """Resampling only the stored pixels under the crop, then turning them upright, equals turning
    the whole image upright, resizing and cropping. Odd sizes make an off-by-one visible (a crop one
    pixel off differs by ~12 on average); for orientations 5-8 Pillow's two resampling passes run
    in the other order, whose 8-bit rounding in between leaves differences of at most 3."""
    with Image.open(realdata("images", "skimage_wheel", "astronaut.png")) as photo:
        upright = photo.convert("RGB").crop((40, 70, 341, 273))  # 301x203
    config = replace(LOSSLESS, resize_mode=mode, image_size=101, downscale_interpolation="bicubic")
    out = pipeline(stored_with_orientation(upright, orientation), config)
    plan = plan_resize(*upright.size, config)
    expected = upright.resize(plan.size, Image.Resampling.BICUBIC)
    if plan.box:
        expected = expected.crop(plan.box)
    if plan.pad_to:
        canvas = Image.new("RGB", (plan.pad_to,) * 2, "white")
        canvas.paste(expected, ((plan.pad_to - expected.width) // 2, (plan.pad_to - expected.height) // 2))
        expected = canvas
    got = pixels(out.data)
    assert got.shape == np.asarray(expected).shape
    difference = np.abs(got - np.asarray(expected, dtype=np.int16))
    assert difference.mean() < 0.5 and difference.max() <= 3


# --- colour modes -----------------------------------------------------------------------------------

def test_cmyk_jpegs_match_their_rgb_colours(realdata):
    rgb = pixels(pipeline(realdata("images", "pillow", "pil_sample_rgb.jpg").read_bytes(), LOSSLESS).data)
    cmyk = pixels(pipeline(realdata("images", "pillow", "pil_sample_cmyk.jpg").read_bytes(), LOSSLESS).data)
    assert mean_abs_diff(cmyk, rgb) < 8  # different encodes of one picture: 4.7 measured


@pytest.mark.parametrize("name", ["Channel_digital_image_CMYK_color.jpg",
                                  "Channel_digital_image_CMYK_color_no_profile.jpg"])
def test_adobe_cmyk_matches_opencv(realdata, name):
    """Adobe (inverted) CMYK comes out with OpenCV's colours, i.e. what img2dataset stored."""
    cv2 = pytest.importorskip("cv2")
    data = realdata("images", "sharp", name).read_bytes()
    opencv = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
    assert probe_image(data).mode == "CMYK"
    assert mean_abs_diff(pixels(pipeline(data, LOSSLESS).data), opencv) < 2


TRANSPARENT = ["pillow/transparent.png", "pillow/transparent.gif", "pillow/transparent.webp",
               "pillow/p_trns_single.png", "pillow/1_trns.png", "pillow/rgb_trns.png", "sharp/with-alpha.png",
               "sharp/16-bit-grey-alpha.png", "sharp/full-transparent.png", "sharp/5_webp_a.webp",
               "skimage_wheel/logo.png", "skimage_wheel/horse.png"]


@pytest.mark.parametrize("path", TRANSPARENT)
def test_transparency_is_composited_on_white(realdata, path):
    data = realdata("images", path).read_bytes()
    with Image.open(io.BytesIO(data)) as source:
        rgba = np.asarray(source.convert("RGBA"), dtype=np.float64)
    alpha = rgba[..., 3:] / 255
    expected = np.rint(rgba[..., :3] * alpha + 255 * (1 - alpha))  # img2dataset's formula
    got = pixels(pipeline(data, LOSSLESS).data)
    assert np.abs(got - expected).max() <= 1
    clear = rgba[..., 3] == 0  # none in logo.png (opaque RGBA) or with-alpha.png (alpha 168 throughout)
    assert (got[clear] == 255).all()


def test_sixteen_bit_grey_keeps_its_top_byte():
    ramp = np.arange(0, 65536, 64, dtype=np.uint16).reshape(32, 32)
    out = io.BytesIO()
    Image.fromarray(ramp).save(out, "PNG")
    assert probe_image(out.getvalue()).mode == "I;16"
    got = pixels(pipeline(out.getvalue(), LOSSLESS).data)
    assert (got == (ramp >> 8)[..., None]).all()


def test_one_bit_image(realdata):
    data = realdata("images", "sharp", "50020484-00001.png").read_bytes()
    assert probe_image(data).mode == "1"
    got = pixels(pipeline(data, replace(LOSSLESS, resize_mode="center_crop")).data)
    assert got.shape == (256, 256, 3)
    assert (got[..., 0] == got[..., 1]).all() and got.min() < 64 and got.max() == 255


@pytest.mark.parametrize("path", ["pillow/iss634.gif", "pillow/iss634.webp", "pillow/iss634.apng",
                                  "imageio_test_images/newtonscradle.gif"])
def test_animations_give_their_first_frame(realdata, path):
    data = realdata("images", path).read_bytes()
    got = pixels(pipeline(data, LOSSLESS).data)
    differences = []
    with Image.open(io.BytesIO(data)) as animation:
        for frame in range(animation.n_frames):
            animation.seek(frame)
            rgba = animation.convert("RGBA")
            flat = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB")
            differences.append(mean_abs_diff(got, flat))
    assert differences[0] < 1 < max(differences)


# --- resize modes against img2dataset ---------------------------------------------------------------

IMG2DATASET_NOISE = pytest.mark.filterwarnings("ignore:value is deprecated")  # its PadIfNeeded(value=...)


@pytest.fixture(scope="module")
def resizer():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # albumentations' update check, imghdr's deprecation
        from img2dataset.resizer import Resizer
    return Resizer


@IMG2DATASET_NOISE
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", RESIZE_TEST_IMAGES)
def test_sizes_equal_img2dataset(realdata, resizer, name, mode):
    data = realdata("img2dataset_tests", "tests", "resize_test_image", name).read_bytes()
    for image_size in (64, 256, 600):
        for only_if_bigger in (False, True):
            theirs = resizer(image_size, mode, only_if_bigger)(io.BytesIO(data))
            assert theirs[5] is None, theirs[5]
            config = ResizeConfig(image_size=image_size, resize_mode=mode,
                                  resize_only_if_bigger=only_if_bigger)
            ours = pipeline(data, config)
            assert (ours.width, ours.height, ours.original_width, ours.original_height) == theirs[1:5]
            assert pixels(ours.data).shape == (ours.height, ours.width, 3)


@IMG2DATASET_NOISE
@pytest.mark.parametrize("mode", ["center_crop", "border"])
@pytest.mark.parametrize("name", RESIZE_TEST_IMAGES)
def test_pixels_close_to_img2dataset(realdata, resizer, name, mode):
    data = realdata("img2dataset_tests", "tests", "resize_test_image", name).read_bytes()
    theirs = resizer(256, mode, False)(io.BytesIO(data))[0]
    ours = pipeline(data, ResizeConfig(resize_mode=mode)).data
    assert mean_abs_diff(pixels(ours), pixels(theirs)) < 3.5  # 0.3-2.7 measured


def test_border_pads_with_white(realdata):
    data = realdata("img2dataset_tests", "tests", "resize_test_image", "456_123.jpg").read_bytes()
    got = pixels(pipeline(data, replace(LOSSLESS, resize_mode="border")).data)
    assert got.shape == (256, 256, 3)
    top = (256 - round(123 * 256 / 456)) // 2
    assert (got[:top] == 255).all() and (got[-top:] == 255).all()
    assert got[top + 2: -top - 2].mean() < 200


def test_resize_only_if_bigger(realdata):
    data = realdata("img2dataset_tests", "tests", "resize_test_image", "321_421.jpg").read_bytes()
    for mode in ("keep_ratio", "center_crop", "border", "keep_ratio_largest"):
        small = pipeline(data, ResizeConfig(image_size=600, resize_mode=mode, resize_only_if_bigger=True))
        assert (small.width, small.height) == (321, 421)
        upscaled = pipeline(data, ResizeConfig(image_size=600, resize_mode=mode))
        assert max(upscaled.width, upscaled.height) >= 600
        shrunk = pipeline(data, ResizeConfig(image_size=64, resize_mode=mode, resize_only_if_bigger=True))
        assert max(shrunk.width, shrunk.height) <= 85


INTERPOLATIONS = ["nearest", "bilinear", "bicubic", "lanczos", "area"]


def test_every_interpolation_name_chooses_its_own_filter():
    """Each name gives other pixels, up and down; nearest, as the only filter that blends nothing,
    upscales with the source's colours alone (PNG output, so encoding adds none)."""
    source = Image.new("RGB", (30, 20))
    source.putdata([((37 * n) % 256, (91 * n) % 256, (13 * n) % 256) for n in range(600)])
    buffer = io.BytesIO()
    source.save(buffer, "PNG")
    colours = {tuple(p) for p in np.asarray(source).reshape(-1, 3)}
    for image_size in (12, 80):  # down, then up
        outputs = {}
        for name in INTERPOLATIONS:
            config = ResizeConfig(image_size=image_size, upscale_interpolation=name, downscale_interpolation=name,
                                  encode_format="png", encode_quality=6)
            outputs[name] = pixels(pipeline(buffer.getvalue(), config).data)
            assert outputs[name].shape == (image_size, image_size, 3)
        assert len({out.tobytes() for out in outputs.values()}) == len(INTERPOLATIONS)
    assert {tuple(p) for p in outputs["nearest"].reshape(-1, 3)} <= colours
    assert not {tuple(p) for p in outputs["bilinear"].reshape(-1, 3)} <= colours


def test_unknown_resize_mode():
    with pytest.raises(ValueError, match="resize_mode"):
        plan_resize(100, 100, ResizeConfig(resize_mode="stretch"))


# --- JPEG draft decoding ------------------------------------------------------------------------------

def full_decode_reference(data: bytes, config: ResizeConfig) -> np.ndarray:
    """Decode at full size, turn upright, then resize and crop as planned."""
    with Image.open(io.BytesIO(data)) as source:
        upright = ImageOps.exif_transpose(source.convert("RGB"))
    plan = plan_resize(*upright.size, config)
    return np.asarray(upright.resize(plan.size, plan.resample).crop(plan.box), dtype=np.int16)


@pytest.mark.parametrize("path,scale", [
    ("sharp/2569067123_aca715a2ee_o.jpg", 8), ("sharp/gain-map.jpg", 8),
    ("imageio_test_images/rommel.jpg", 8), ("skimage_wheel/retina.jpg", 4),
    ("skimage_wheel/hubble_deep_field.jpg", 2)])
def test_draft_decode_is_used_and_close_to_full_decode(realdata, path, scale):
    data = realdata("images", path).read_bytes()
    config = replace(LOSSLESS, resize_mode="center_crop")
    out = pipeline(data, config)
    assert out.decode_scale == scale
    assert mean_abs_diff(pixels(out.data), full_decode_reference(data, config)) < 2.5  # 0.4-1.8 measured


@pytest.mark.parametrize("mode", ["keep_ratio", "center_crop", "border", "keep_ratio_largest"])
def test_draft_scale_is_the_largest_that_keeps_enough_pixels(realdata, mode):
    """The decoded image never has fewer pixels than the resized one on either side, and the next
    DCT scale up would (unless already at 1/8)."""
    data = realdata("images", "imageio_test_images", "rommel.jpg").read_bytes()  # 3072x2304, EXIF 6
    info = probe_image(data)
    for image_size in (32, 200, 256, 400, 700, 1200, 2500):
        config = ResizeConfig(image_size=image_size, resize_mode=mode)
        scale = pipeline(data, config).decode_scale
        width, height = plan_resize(info.width, info.height, config).size
        if width > info.width:  # enlarging: nothing to gain from a reduced decode
            assert scale == 1
            continue
        decoded = (math.ceil(info.width / scale), math.ceil(info.height / scale))
        assert decoded[0] >= width and decoded[1] >= height
        if scale < 8:
            assert info.width / (2 * scale) < width or info.height / (2 * scale) < height


def test_no_draft_without_jpeg_or_shrinking(realdata):
    png = realdata("images", "skimage_wheel", "astronaut.png").read_bytes()
    assert pipeline(png, ResizeConfig(image_size=64)).decode_scale == 1
    jpeg = realdata("images", "sharp", "2569067123_aca715a2ee_o.jpg").read_bytes()
    assert pipeline(jpeg, ResizeConfig(resize_mode="no", encode_quality=50)).decode_scale == 1


# --- encoding, limits, errors ---------------------------------------------------------------------------

@pytest.mark.parametrize("fmt,quality,pillow_format", [
    ("jpg", 95, "JPEG"), ("jpg", 40, "JPEG"), ("webp", 80, "WEBP"), ("png", 0, "PNG"), ("png", 9, "PNG")])
def test_encoded_formats_decode_back(realdata, fmt, quality, pillow_format):
    data = realdata("images", "sharp", "Landscape_6.jpg").read_bytes()
    out = pipeline(data, ResizeConfig(image_size=200, resize_mode="keep_ratio", encode_format=fmt,
                                      encode_quality=quality))
    assert (out.ext, out.width, out.height) == (fmt, 267, 200)  # 450x600 stored, shown 600x450
    with Image.open(io.BytesIO(out.data)) as decoded:
        assert (decoded.format, decoded.mode, decoded.size) == (pillow_format, "RGB", (267, 200))


@pytest.mark.parametrize("fmt", ["jpg", "webp", "png"])
def test_metadata_is_not_copied(realdata, fmt):
    """No EXIF (its orientation is applied) and no ICC profile (557 KB in this CMYK file)."""
    data = realdata("images", "sharp", "Channel_digital_image_CMYK_color.jpg").read_bytes()
    out = pipeline(data, ResizeConfig(encode_format=fmt, encode_quality=9 if fmt == "png" else 90))
    assert len(out.data) < 200_000
    with Image.open(io.BytesIO(out.data)) as decoded:
        assert not {"icc_profile", "exif", "xmp"} & set(decoded.info)


def test_transform_checks_pixels_again_before_decoding(realdata):
    data = realdata("images", "sharp", "giant-image.jpg").read_bytes()
    with pytest.raises(Dropped) as caught:
        transform_image(data, probe_image(data), ResizeConfig(), max_pixels=ImageConfig().max_pixels)
    assert caught.value.reason == "too_many_pixels" and "280000000" in caught.value.detail


def test_truncated_images_stay_rejects(realdata):
    for path in ("sharp/truncated.jpg", "pillow/truncated_jpeg.jpg", "sharp/truncated.png"):
        with pytest.raises(Dropped) as caught:
            pipeline(realdata("images", path).read_bytes())
        assert caught.value.reason == "decode_error" and "truncated" in caught.value.detail
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
