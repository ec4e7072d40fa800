"""`trustlane anonymize image`: the JSON contract, masks written in the input's format, bad input refused
with nothing written."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import typer
from PIL import Image

from tests.conftest import shared_path
from trustlane.cli import anonymize_cmd
from trustlane.errors import TrustlaneError


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB")).astype(float)


def _format(path: Path) -> str | None:
    with Image.open(path) as img:
        return img.format


def _run(*args: str | Path | int, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run the command group as the console script does (a TrustlaneError becomes its exit code)."""
    command = typer.main.get_command(anonymize_cmd.app)
    try:
        command.main(args=[str(a) for a in args], prog_name="trustlane anonymize", standalone_mode=False)
        code = 0
    except TrustlaneError as exc:
        print(exc.diagnostics())
        code = exc.exit_code
    return code, capsys.readouterr().out


def test_json_lines_and_masked_outputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = shared_path("vectors", "images")
    names = ["dlib_2007_007763.jpg", "oa_eu_dev01.jpg"]
    inputs = [folder / n for n in names]
    out = tmp_path / "out"
    code, text = _run("image", *inputs, "--out", out, "--json", capsys=capsys)
    assert code == 0
    records = [json.loads(line) for line in text.splitlines()]
    assert [r["file"] for r in records] == [str(p) for p in inputs]
    for record, src in zip(records, inputs, strict=True):
        assert set(record) == {"file", "faces", "plates"}
        masked = _pixels(out / src.name)
        assert _format(out / src.name) == "JPEG"
        h, w = _pixels(src).shape[:2]
        for x, y, bw, bh in record["faces"] + record["plates"]:
            assert all(isinstance(v, int) for v in (x, y, bw, bh))
            assert 0 <= x < w and 0 <= y < h and x + bw <= w and y + bh <= h
            inner = masked[y + 2 : y + bh - 2, x + 2 : x + bw - 2]  # JPEG ringing at the edges
            if inner.size:
                assert inner.std() < 3.0
    assert len(records[0]["faces"]) >= 6  # the annotated group photo has 7 faces


def test_mosaic_and_no_plates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = shared_path("vectors", "images", "dlib_2007_007763.jpg")
    code, text = _run("image", src, "--out", tmp_path, "--json", "--mask", "mosaic", "--no-plates", capsys=capsys)
    assert code == 0
    record = json.loads(text)
    assert record["plates"] == [] and record["faces"]
    code, text = _run("image", src, "--out", tmp_path / "b", "--json", "--no-faces", "--no-plates", capsys=capsys)
    assert json.loads(text) == {"file": str(src), "faces": [], "plates": []}
    a = _pixels(src)
    b = _pixels(tmp_path / "b" / src.name)
    assert np.abs(a - b).mean() < 2  # re-encoded, not masked


def test_png_stays_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "scene.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)).save(src)
    code, _ = _run("image", src, "--out", tmp_path / "o", "--json", capsys=capsys)
    assert code == 0 and _format(tmp_path / "o" / "scene.png") == "PNG"


def test_corrupt_file_names_it_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(good)
    bad = tmp_path / "notes.jpg"
    bad.write_text("this is text, not a JPEG")
    out = tmp_path / "out"
    code, text = _run("image", good, bad, "--out", out, "--json", capsys=capsys)
    assert code == 2 and "notes.jpg" in text
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mask", "blur"], "mask must be one of"),
        (["--face-threshold", "1.5"], "face_threshold"),
    ],
)
def test_bad_options(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    src = tmp_path / "a.png"
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(src)
    code, text = _run("image", src, "--out", tmp_path / "o", *args, capsys=capsys)
    assert code == 2 and message in text


def test_missing_and_clashing_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, text = _run("image", tmp_path / "nope.jpg", "--out", tmp_path / "o", capsys=capsys)
    assert code == 2 and "nope.jpg" in text
    src = tmp_path / "a.png"
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(src)
    (tmp_path / "sub").mkdir()
    shutil.copy(src, tmp_path / "sub" / "a.png")
    code, text = _run("image", src, tmp_path / "sub" / "a.png", "--out", tmp_path / "o", capsys=capsys)
    assert code == 2 and "share the name" in text
    code, text = _run("image", src, "--out", tmp_path, capsys=capsys)
    assert code == 2 and "inside --out" in text


def test_frames_in_parallel_give_what_one_frame_at_a_time_gives(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = shared_path("vectors", "images")
    inputs = [folder / n for n in ("dlib_2007_007763.jpg", "oa_eu_dev01.jpg", "ccpd_dev01.jpg")]
    texts = {}
    for workers in (1, 3):
        code, texts[workers] = _run(
            "image", *inputs, "--out", tmp_path / f"w{workers}", "--workers", workers, "--json", capsys=capsys
        )
        assert code == 0
    assert texts[1] == texts[3].replace("w3", "w1")
    for src in inputs:
        assert (tmp_path / "w1" / src.name).read_bytes() == (tmp_path / "w3" / src.name).read_bytes()
    assert sorted(p.name for p in (tmp_path / "w3").iterdir()) == sorted(p.name for p in inputs)  # no staging left


def test_damage_found_by_a_parallel_worker_leaves_no_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = shared_path("vectors", "images")
    bad = tmp_path / "late.jpg"
    bad.write_bytes((folder / "ccpd_dev01.jpg").read_bytes()[:5000])  # a JPEG cut short
    out = tmp_path / "existing"
    out.mkdir()
    (out / "keep.txt").write_text("earlier work")
    inputs = [folder / "dlib_2007_007763.jpg", folder / "oa_eu_dev01.jpg", bad]
    code, text = _run("image", *inputs, "--out", out, "--workers", 2, "--json", capsys=capsys)
    assert code == 2 and "late.jpg" in text
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_staging_left_by_a_killed_run_is_removed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    out = tmp_path / "out"
    abandoned = out / f".trustlane-staging-{gone.stdout.strip()}-abc"
    abandoned.mkdir(parents=True)
    (abandoned / "half.jpg").write_bytes(b"partial")
    live = out / f".trustlane-staging-{os.getpid()}-xyz"  # a run still going (this process): left alone
    live.mkdir()
    src = tmp_path / "a.png"
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(src)
    code, _ = _run("image", src, "--out", out, "--json", capsys=capsys)
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(["a.png", live.name])
