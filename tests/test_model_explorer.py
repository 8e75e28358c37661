"""Model Explorer: `numerics --model-explorer` node data on the graph's nodes, `mobilekit view` served and
opened in a real browser (Debian's chromium driven by Playwright): the graph renders and the planted-fault
layer carries the worst SQNR, in the worst colour."""

import json
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mobilekit import cli
from mobilekit.convert import convert_float, convert_int8
from mobilekit.layer_map import LayerMap
from mobilekit.model_explorer import SQNR_THRESHOLDS
from mobilekit.tflite_file import TfliteFile

from test_precision import images, planted_model

MOBILEKIT = str(Path(sys.executable).parent / "mobilekit")


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """The planted-fault model's int8 file, its float reference, and `numerics --model-explorer` node data."""
    d = tmp_path_factory.mktemp("planted")
    rng = np.random.default_rng(1)
    model = planted_model(True)
    (d / "m.tflite").write_bytes(convert_int8(model, images(rng, 64)))
    (d / "m_float.tflite").write_bytes(convert_float(model))
    assert cli.main(["numerics", str(d / "m.tflite"), "--reference", str(d / "m_float.tflite"), "--data", "photos",
                     "--images", "30", "--json", str(d / "n.json"), "--model-explorer", str(d / "me.json"),
                     "--model-explorer-rounding", str(d / "ratio.json")]) == 0
    assert sorted(p.name for p in d.iterdir()) == ["m.tflite", "m_float.tflite", "me.json", "n.json", "ratio.json"]
    return d


def test_node_data_is_keyed_by_the_graphs_tensor_names(planted):
    doc = json.loads((planted / "me.json").read_text())
    ratio = json.loads((planted / "ratio.json").read_text())
    layers = json.loads((planted / "n.json").read_text())["layers"]
    content = (planted / "m.tflite").read_bytes()
    outputs = {TfliteFile(content).tensors[i].name for op in TfliteFile(content).ops for i in op.outputs}
    assert set(doc["results"]) <= outputs and len(doc["results"]) == len(layers) == 7
    planted_tensor = LayerMap.of(content).tensor_names["planted"][0]
    assert min(doc["results"], key=lambda k: doc["results"][k]["value"]) == planted_tensor
    assert doc["results"][planted_tensor]["value"] < SQNR_THRESHOLDS[0]["value"] and doc["thresholds"] == SQNR_THRESHOLDS
    assert set(ratio["results"]) == set(doc["results"]) and ratio["name"] == "error / rounding floor"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # starts Chromium (4-5 s): the full lane (CI) runs it
@pytest.mark.needs_browser
def test_view_shows_the_graph_and_the_planted_layer_in_the_worst_colour(planted):
    from playwright.sync_api import sync_playwright

    port = _free_port()
    server = subprocess.Popen([MOBILEKIT, "view", str(planted / "m.tflite"), "--node-data", str(planted / "me.json"),
                               "--port", str(port), "--no-browser"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
    try:
        url, seen = None, []
        deadline = time.time() + 120
        while url is None and time.time() < deadline:
            line = server.stdout.readline()
            if not line:
                break
            seen.append(line)
            if line.startswith(f"http://127.0.0.1:{port}/"):
                url = line.strip()
        assert url, "".join(seen)
        worst = min(json.loads((planted / "me.json").read_text())["results"].values(), key=lambda r: r["value"])
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"),
                                        args=["--no-sandbox", "--use-gl=swiftshader", "--enable-unsafe-swiftshader"])
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(url)
            page.get_by_text("op node count").wait_for(timeout=60_000)
            assert page.locator("canvas").count() >= 1  # the graph is drawn (WebGL)
            info = page.inner_text("body")
            assert re.search(r"op node count\s+9\b", info), info[:500]  # every op of the file is a node
            page.get_by_text("int8 SQNR vs float (dB)").first.wait_for(timeout=30_000)
            # The side panel's node data table: one row per op node (index, op, value in the node's colour).
            rows = page.locator("tr").filter(has_text=re.compile(r"conv_2d|mean|fully_connected|softmax"))
            rows.first.wait_for(timeout=30_000)
            shown = []
            for i in range(rows.count()):
                cells = rows.nth(i).locator("td")
                value = cells.last.inner_text().strip()
                if re.fullmatch(r"\d+(\.\d+)?(e-?\d+)?", value):
                    colour = cells.last.evaluate("e => getComputedStyle(e).backgroundColor")
                    shown.append((float(value), rows.nth(i).inner_text(), colour))
            assert len(shown) == 7, shown  # every compared layer's op carries its value
            value, text, colour = min(shown)
            assert value == pytest.approx(worst["value"], rel=1e-6) and "conv_2d" in text, shown
            assert colour == "rgb(211, 47, 47)", shown  # SQNR_THRESHOLDS' worst band (#d32f2f)
            assert sum(c == "rgb(211, 47, 47)" for _, _, c in shown) < len(shown)  # not every node is red
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_view_refuses_what_is_not_a_build_or_a_tflite(cli_error, tmp_path, planted):
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "notes.txt").write_text("x")
    assert "is not a complete build: report.json is missing" in cli_error("view", tmp_path / "folder")
    assert "no build folder or .tflite file" in cli_error("view", tmp_path / "missing")
    (tmp_path / "x.tflite").write_bytes(b"not a model")
    assert "is not a build folder or a .tflite file" in cli_error("view", tmp_path / "x.tflite")
    (tmp_path / "bad.json").write_text("{")
    assert "--node-data" in cli_error("view", planted / "m.tflite", "--node-data", tmp_path / "bad.json")
    assert "--port must be <= 65535" in cli_error("view", planted / "m.tflite", "--port", "70000")
