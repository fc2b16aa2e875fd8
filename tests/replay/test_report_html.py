"""report.html pages: inline SVG curves, tables, media that exist; train and eval write one; Chromium loads it."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from embodia.policies.factory import policy_config
from embodia.replay.report_html import Page, svg_curve, write_page
from embodia.runtime.collect import collect
from embodia.training.config import TrainConfig
from embodia.training.entry import train
from embodia.training.run import RunOptions


def referenced(page: Path) -> list[str]:
    return re.findall(r"(?:src|href)='([^']+)'", page.read_text())


def test_page_inlines_curves_and_references_only_existing_files(tmp_path):
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "a.png").write_bytes(b"\x89PNG")
    page = Page("t", notes=["<b>escaped</b>"], tables=[("cap", ["k", "v"], [["x", "1"]])])
    page.curves.append(("loss", [(0, 1.0), (1, 0.5), (2, 0.25)]))
    page.images += [("there", tmp_path / "media" / "a.png"), ("missing", tmp_path / "nope.png")]
    page.videos.append(("missing video", tmp_path / "nope.mp4"))
    text = write_page(page, tmp_path / "report.html").read_text()
    assert "<svg" in text and "polyline" in text and "&lt;b&gt;escaped" in text
    assert referenced(tmp_path / "report.html") == ["media/a.png"]
    assert "fewer than 2 points" in svg_curve("flat", [(0, float("nan")), (1, 1.0)])


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("report_run")
    collect("embodia/PushBlock-v0", 2, root / "demos", seed=0, progress=False)
    config = TrainConfig(steps=30, batch_size=16, lr=1e-3, warmup_steps=2, log_every=5)
    train(root / "demos", policy_config("mlp"), root / "run", config, RunOptions(obs_keys=("state",)), progress=False)
    return root


def embodia(*args):
    return subprocess.run([sys.executable, "-m", "embodia.cli", *args], capture_output=True, text=True, timeout=300)


def test_train_and_eval_write_report_pages(trained_run):
    from embodia.replay.report_html import write_train_report

    page = write_train_report(trained_run / "run")
    text = page.read_text()
    assert "train/loss" in text and text.count("<svg") >= 2 and "Hyperparameters" in text
    out = trained_run / "eval"
    proc = embodia(
        "eval", "--checkpoint", str(trained_run / "run" / "policy.pt"), "--env", "embodia/PushBlock-v0",
        "--episodes", "2", "--out", str(out), "--no-progress",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    refs = referenced(out / "report.html")
    assert refs == ["replay.mp4"] and (out / "replay.mp4").stat().st_size > 1000
    assert "success" in (out / "report.html").read_text()


def chromium() -> str:
    """Debian's chromium, installed with apt-get when missing (the test is marked slow)."""
    found = shutil.which("chromium")
    if found is None:
        sudo = [] if shutil.which("sudo") is None else ["sudo"]
        subprocess.run([*sudo, "apt-get", "install", "-y", "-q", "chromium"], check=True, capture_output=True)
        found = shutil.which("chromium")
    assert found, "apt-get installed no chromium"
    return found


@pytest.mark.slow
def test_report_loads_in_headless_chromium_without_console_errors(trained_run):
    from embodia.replay.report_html import write_train_report

    pages = [write_train_report(trained_run / "run")]
    if (trained_run / "eval" / "report.html").exists():
        pages.append(trained_run / "eval" / "report.html")
    for page in pages:
        proc = subprocess.run(
            [chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
             "--virtual-time-budget=5000", "--dump-dom", page.resolve().as_uri()],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "<h1>" in proc.stdout  # the page was parsed and rendered
        console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line or "Failed to load" in line]
        assert not console, console
