"""Folders as phones and laptops make them, outputs that never clobber, untrusted JSON, `view`'s exposure rule and
progress without a terminal. The everyday folder is made at test time: a rotated phone JPEG, `.JPG`, a WebP-only
class, hidden folders and files, files of other formats; the refusals each get a folder of their own."""

import io
import json
import shutil
import socket
import struct
import unicodedata
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from mobilekit import data
from mobilekit.errors import MobilekitError

RNG = np.random.default_rng(7)


def _jpeg(image: np.ndarray, orientation: int = 1) -> bytes:
    buf = io.BytesIO()
    im = Image.fromarray(image if image.ndim == 3 else np.repeat(image[..., None], 3, -1))  # RGB: ImageIO reads
    # a grey JPEG through a linear colour space, brighter than any phone shows it
    exif = Image.Exif()
    if orientation != 1:
        exif[0x0112] = orientation
    im.save(buf, "JPEG", quality=100, subsampling=0, exif=exif.tobytes())
    return buf.getvalue()


def _quadrants(h: int, w: int) -> np.ndarray:
    """A grey image of four flat 8x8-aligned quadrants (every decoder agrees on flat JPEG blocks) that no rotation
    or mirror maps onto itself."""
    a = np.empty((h, w), np.uint8)
    a[:h // 2, :w // 2], a[:h // 2, w // 2:], a[h // 2:, :w // 2], a[h // 2:, w // 2:] = 16, 96, 176, 240
    return a


@pytest.fixture
def phone_folder(tmp_path):
    """cats: a portrait photo stored landscape with EXIF orientation 6, and `.JPG` files; dogs: WebP only; plus
    what laptops leave behind: .ipynb_checkpoints, .DS_Store, a macOS ._ file, a HEIC and a text file."""
    root = tmp_path / "phone"
    (root / "cats").mkdir(parents=True)
    (root / "dogs").mkdir()
    (root / "cats" / "portrait.jpg").write_bytes(_jpeg(_quadrants(32, 48), 6))  # stored 48 wide, 32 high
    for i in range(2):
        (root / "cats" / f"IMG_{i}.JPG").write_bytes(_jpeg(RNG.integers(0, 255, (20, 20, 3), dtype=np.uint8)))
        buf = io.BytesIO()
        Image.fromarray(RNG.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(buf, "WEBP", lossless=True)
        (root / "dogs" / f"dog{i}.WebP").write_bytes(buf.getvalue())
    (root / ".ipynb_checkpoints" / "cats").mkdir(parents=True)
    (root / ".ipynb_checkpoints" / "cats" / "x.png").write_bytes(b"junk")
    (root / "cats" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (root / "cats" / "._IMG_0.JPG").write_bytes(b"\0\5\26\7 AppleDouble")
    (root / "dogs" / "dog.heic").write_bytes(b"\0\0\0\x18ftypheic")
    (root / "dogs" / "notes.txt").write_text("labels later")
    return root


def test_a_phone_folder_reads_what_it_can_and_says_what_it_skipped(phone_folder):
    ds = data.load_image_folder(phone_folder, size=16, test_fraction=0.34, seed=0)
    assert ds.class_names == ["cats", "dogs"]
    assert len(ds.x_train) + len(ds.x_test) == 5  # 3 cats (.jpg, 2 .JPG) + 2 WebP dogs; nothing hidden
    notes = ds.extra["warnings"]
    assert len(notes) == 2, notes
    assert "hidden folders" in notes[0] and ".ipynb_checkpoints" in notes[0]
    assert "1 (no extension)" not in notes[1] and "1 .heic" in notes[1] and "1 .txt" in notes[1]


def test_exif_orientation_is_applied_as_a_gallery_shows_the_photo(phone_folder):
    shown, _ = data.decode_image(phone_folder / "cats" / "portrait.jpg", 16, 3)
    as_stored = data.resize_uint8(np.repeat(_quadrants(32, 48)[None, ..., None], 3, -1), 16)[0]
    as_shown = data.resize_uint8(np.repeat(np.rot90(_quadrants(32, 48), -1)[None, ..., None].copy(), 3, -1), 16)[0]
    assert np.abs(shown.astype(int) - as_shown).max() <= 1
    assert np.abs(shown.astype(int) - as_stored).max() > 50  # orientation 6 is not a no-op on this image


@pytest.mark.parametrize("orientation", range(1, 9))
def test_each_exif_orientation_matches_pil_exif_transpose(orientation):
    a = RNG.integers(0, 255, (5, 7, 3), dtype=np.uint8)
    im = Image.fromarray(a)
    im.getexif()[0x0112] = orientation
    expected = np.asarray(ImageOps.exif_transpose(im))
    ours = data.EXIF_ORIENTATION.get(orientation, lambda x: x)(a)
    assert ours.shape == expected.shape and np.array_equal(ours, expected)


def _folder(root: Path, classes: dict[str, int]) -> Path:
    for name, n in classes.items():
        (root / name).mkdir(parents=True)
        for i in range(n):
            (root / name / f"{i}.png").write_bytes(_png(RNG.integers(0, 255, (8, 8, 3), dtype=np.uint8)))
    return root


def _png(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "PNG")
    return buf.getvalue()


def test_a_class_folder_without_a_usable_image_is_refused(tmp_path):
    root = _folder(tmp_path / "d", {"cats": 2, "dogs": 2, "birds": 0})
    (root / "birds" / "b.heic").write_bytes(b"not decoded")
    with pytest.raises(MobilekitError, match="class folder .*birds has no .* image"):
        data.scan_image_folder(root)


def test_one_name_in_two_unicode_forms_is_refused(tmp_path):
    nfc, nfd = unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")
    assert nfc != nfd
    root = _folder(tmp_path / "d", {nfc: 2, nfd: 2, "tea": 2})
    with pytest.raises(MobilekitError, match="one name in two Unicode forms"):
        data.scan_image_folder(root)


def test_a_test_folder_in_another_unicode_form_matches_and_repeated_images_are_said(tmp_path):
    nfc, nfd = unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")
    train = _folder(tmp_path / "train", {nfc: 3, "tea": 3})
    test = tmp_path / "test"  # copied on a Mac: NFD names, and one image of the training set among them
    (test / nfd).mkdir(parents=True)
    (test / "tea").mkdir()
    shutil.copy(train / nfc / "0.png", test / nfd / "same.png")
    (test / "tea" / "t.png").write_bytes(_png(RNG.integers(0, 255, (8, 8, 3), dtype=np.uint8)))
    ds = data.load_image_folder(train, size=8, test_path=test)
    assert len(ds.x_test) == 2
    assert any("1 of the 2 test images are byte-identical to training images" in n for n in ds.extra["warnings"])


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` (a decompression bomb's header; no pixel data follows)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk + struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))


@pytest.mark.parametrize("side", [10_000, 20_000])
def test_an_image_too_large_to_decode_is_refused_from_its_header(tmp_path, side):
    root = _folder(tmp_path / "d", {"a": 2, "b": 2})
    (root / "b" / "bomb.png").write_bytes(_png_header_only(side, side))
    with pytest.raises(MobilekitError, match="bomb.png .*pixels"):
        data.load_image_folder(root, size=8)


def test_untrusted_json_limits_and_shapes(tmp_path):
    from mobilekit.json_files import MAX_JSON_DEPTH, Each, check_shape, parse_json, read_json

    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)  # Python's own parser would raise RecursionError
    with pytest.raises(MobilekitError, match="deep.json' nests deeper than"):
        read_json(deep, "--node-data")
    with pytest.raises(MobilekitError, match="nests deeper"):
        parse_json("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1), "x")
    assert parse_json("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH, "x") is not None
    with pytest.raises(MobilekitError, match="duplicate key 'a'"):
        parse_json('{"a": 1, "a": 2}', "x")
    shape = {"results": Each({"value": (int, float)}), "n?": int}
    check_shape({"results": {"t": {"value": 1.5}}}, shape, "f")
    with pytest.raises(MobilekitError, match=r"f: results\['t'\].value must be a number; found 'x'"):
        check_shape({"results": {"t": {"value": "x"}}}, shape, "f")
    with pytest.raises(MobilekitError, match="f: n must be an integer; found True"):
        check_shape({"results": {}, "n": True}, shape, "f")


@pytest.fixture(scope="module")
def tiny_tflite(tmp_path_factory):
    from mobilekit.backend import keras
    from mobilekit.convert import convert_float

    d = tmp_path_factory.mktemp("view")
    inp = keras.Input((8, 8, 3))
    model = keras.Model(inp, keras.layers.Dense(2, name="head")(keras.layers.GlobalAveragePooling2D()(inp)))
    (d / "m.tflite").write_bytes(convert_float(model))
    return d


PROFILES = [{"models": "x"}, {"models": [1]}, {"models": [{"size_bytes": "big"}]}, {"models": [{"profile": []}]},
            {"models": [{"profile": {"ops": {}}}]}, {"models": [{"profile": {"ops": [{"index": "0", "ms": 1}]}}]},
            {"models": [{"profile": {"ops": [{"index": 0, "ms": "fast"}]}}]}]


@pytest.mark.parametrize("profile", PROFILES, ids=[json.dumps(p) for p in PROFILES])
def test_view_refuses_a_profile_of_the_wrong_shape_in_one_line(cli_error, tiny_tflite, profile):
    (tiny_tflite / "p.json").write_text(json.dumps(profile))
    assert "--profile" in cli_error("view", tiny_tflite / "m.tflite", "--profile", tiny_tflite / "p.json",
                                    "--no-browser")


def test_view_refuses_deep_or_misshapen_node_data(cli_error, tiny_tflite):
    (tiny_tflite / "deep.json").write_text('{"results": ' + "[" * 50_000 + "]" * 50_000 + "}")
    assert "nests deeper" in cli_error("view", tiny_tflite / "m.tflite", "--node-data", tiny_tflite / "deep.json")
    (tiny_tflite / "nd.json").write_text('{"results": {"t": {"value": [1]}}}')
    assert "results['t'].value must be" in cli_error("view", tiny_tflite / "m.tflite", "--node-data",
                                                     tiny_tflite / "nd.json")


def test_view_on_a_port_in_use_is_one_line_before_the_server_starts(cli_error, tiny_tflite):
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        line = cli_error("view", tiny_tflite / "m.tflite", "--port", port, "--no-browser")
    assert line.startswith("mobilekit view: error: cannot serve on 127.0.0.1 port") and str(port) in line


def test_an_allowed_remote_address_passes_with_a_warning():
    from mobilekit.model_explorer import check_server_address

    port, warning = check_server_address("0.0.0.0", None, allow_remote=True)
    assert 8080 <= port < 8100 and "any file this process can read" in warning
    assert check_server_address("localhost", port, allow_remote=False) == (port, None)


def test_outputs_are_recognised_as_the_kits_own_and_parents_are_made(tmp_path):
    from mobilekit.files import check_output_files, json_with_keys, png_by_mobilekit, write_json_atomic
    from mobilekit.report import numerics_plot

    doc = {"int8": "m.tflite", "reference": "f.tflite", "output": {"top1_agreement": 0.9},
           "layers": [{"name": "conv", "sqnr_db": 30.0, "rounding_sqnr_db": 40.0}]}
    write_json_atomic(tmp_path / "new" / "deeper" / "n.json", doc)  # the folders did not exist
    numerics_plot(doc, tmp_path / "new" / "p.png")
    outputs = [("--json", tmp_path / "new" / "deeper" / "n.json", "a numerics JSON",
                json_with_keys("int8", "reference", "layers")),
               ("--plot", tmp_path / "new" / "p.png", "a numerics plot", png_by_mobilekit)]
    check_output_files(outputs)  # a second run may replace its own earlier outputs
    (tmp_path / "mine.png").write_bytes(_png(np.zeros((4, 4, 3), np.uint8)))  # a PNG, not the kit's
    with pytest.raises(MobilekitError, match="exists and is not a numerics plot"):
        check_output_files([("--plot", tmp_path / "mine.png", "a numerics plot", png_by_mobilekit)])


def test_progress_without_a_terminal_prints_plain_lines(monkeypatch):
    import time

    from rich.console import Console

    from mobilekit import progress

    monkeypatch.setenv("MOBILEKIT_PROGRESS_SECONDS", "0.05")
    sink = io.StringIO()
    with progress.use_console(Console(file=sink, force_terminal=False, width=120)):
        with progress.task("Training", 6) as advance:
            for _ in range(6):
                time.sleep(0.03)
                advance("loss=0.5")
    lines = [line for line in sink.getvalue().splitlines() if line.startswith("  Training: ")]
    assert len(lines) >= 2, sink.getvalue()
    counts = [int(line.split(": ")[1].split("/")[0]) for line in lines]
    assert counts == sorted(counts) and all("/6 loss=0.5 (" in line for line in lines)
    sink = io.StringIO()
    with progress.use_console(Console(file=sink, force_terminal=True, width=120)):
        with progress.task("Training", 3) as advance:
            for _ in range(3):
                time.sleep(0.06)
                advance()
    assert "Training: " not in sink.getvalue()  # a terminal gets the bar only


@pytest.mark.slow
@pytest.mark.needs_jdk
def test_the_java_core_turns_a_rotated_phone_jpeg_as_python_does(tmp_path):
    """A portrait JPEG stored landscape (EXIF orientation 6): the core's input bytes equal mobilekit's own (flat
    blocks: ImageIO and TensorFlow decode them alike); without the orientation they would not."""
    from mobilekit.export_android import model_json

    from test_android_demo import compile_core, java_bytes

    jpeg = tmp_path / "portrait.jpg"
    jpeg.write_bytes(_jpeg(_quadrants(32, 48), 6))
    plain = tmp_path / "stored.jpg"
    plain.write_bytes(_jpeg(_quadrants(32, 48), 1))
    report = {"sha256": "0" * 64, "classes": ["a", "b"], "arch": "squeezenet1_1", "accuracy": {},
              "preprocessing": {"size": [16, 16], "channels": 3, "scale": 1 / 255, "offset": 0.0},
              "quantization": {"input": {"dtype": "int8", "scale": 1 / 255, "zero_point": -128},
                               "output": {"dtype": "int8", "shape": [1, 2], "scale": 1 / 256, "zero_point": -128}}}
    (tmp_path / "model.json").write_text(json.dumps(model_json(report, "m.tflite", "labels.txt")))
    theirs = java_bytes(compile_core(tmp_path / "core"), tmp_path / "model.json", [jpeg, plain], tmp_path / "bins")
    ours = [data.decode_image(p, 16, 3)[0].astype(np.int16) - 128 for p in (jpeg, plain)]
    got = [np.frombuffer(t, np.int8).reshape(16, 16, 3).astype(np.int16) for t in theirs]
    assert np.abs(got[0] - ours[0]).max() <= 1 and np.abs(got[1] - ours[1]).max() <= 1
    assert np.abs(got[0] - ours[1]).max() > 50  # the orientation changed the bytes: the check has teeth
