"""``lifecycle report --html``: one self-contained page, loaded in headless Chromium with
no console message; the screenshot is kept in test-artifacts/ (``$LIFECYCLE_ARTIFACTS``)."""

from __future__ import annotations

import html.parser
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from procs import ROOT, environment
from stores import STORE_FACTORIES

from lifecycle import Checkpoint, Learning, LearningType, SessionManager
from lifecycle.html_report import build, exercised, gather
from lifecycle.spec import SessionState as S
from lifecycle.stores.base import ProjectStore, Store
from lifecycle.stores.file import FileStore

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ARTIFACTS = Path(os.environ.get("LIFECYCLE_ARTIFACTS") or Path(ROOT) / "test-artifacts")


@pytest.fixture(params=("file", "sqlite", "postgres"))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    made = STORE_FACTORIES[request.param](tmp_path)
    yield made
    made.close()


def history(store: Store) -> None:
    """Two sessions; the second resumes from an older checkpoint (a branch) and stays open."""
    now = [T0]
    m = SessionManager(store=store, project="demo", clock=lambda: now[0])
    m.start_session(command="impl", restore=False)
    m.add_task("T1", "Draw the <timeline> & tree")
    first = m.create_checkpoint(Checkpoint(id="x", timestamp=now[0], phase="Phase 1"))
    now[0] += timedelta(minutes=20)
    m.complete_task("T1", priority="high")
    m.before_operation("rm -rf build/")
    m.capture_learning(
        Learning(
            type=LearningType.INSIGHT,
            key="learning/insights/inline-svg",
            content="inline SVG needs no network",
            timestamp=now[0],
        )
    )
    now[0] += timedelta(minutes=5)
    m.end_session(success=True, phase="Phase 1")
    now[0] += timedelta(hours=3)
    m2 = SessionManager(store=store, project="demo", clock=lambda: now[0])
    m2.start_session(command="impl", checkpoint_id=first.checkpoint_id)
    m2.add_task("T2", "Open question work")
    m2.add_open_question("Colour blind safe palette?")
    m2.add_blocker("waiting for review")
    now[0] += timedelta(minutes=10)
    m2.create_checkpoint(Checkpoint(id="y", timestamp=now[0], phase="Phase 2"))
    m2.save_context()


class Links(html.parser.HTMLParser):
    """Every URL-carrying attribute, and whether the document parses."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href", "xlink:href", "action", "data") and value:
                self.urls.append(value)


def test_the_page_has_every_section_and_escapes_what_it_shows(store: Store) -> None:
    history(store)
    page = build(ProjectStore(store, "demo"), T0 + timedelta(days=1))
    for part in (
        "Sessions over time",
        "Checkpoint tree",
        "Open work",
        "Learnings",
        "State diagram",
        "Colour blind safe palette?",
        "waiting for review",
        "learning/insights/inline-svg",
        "Draw the &lt;timeline&gt; &amp; tree",
        'class="branch"',  # the second session resumed from an older checkpoint
    ):
        assert part in page, part
    assert "<timeline>" not in page


def test_the_page_loads_nothing_from_anywhere(store: Store) -> None:
    history(store)
    page = build(ProjectStore(store, "demo"), T0)
    parser = Links()
    parser.feed(page)
    assert all(u.startswith(("data:", "#", "url(#")) for u in parser.urls), parser.urls
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", page)
    assert "@import" not in page and "url(http" not in page


def test_the_transitions_are_inferred_from_the_sessions_and_their_checkpoints(
    store: Store,
) -> None:
    history(store)
    counts = exercised(gather(ProjectStore(store, "demo"), T0))
    assert counts[(S.INITIALIZING, S.ACTIVE)] == 1
    assert counts[(S.INITIALIZING, S.RESUMED)] == 1
    assert counts[(S.ACTIVE, S.CHECKPOINTED)] >= 3
    assert counts[(S.CHECKPOINTED, S.CHECKPOINTED)] == 1  # the risk checkpoint
    assert (S.RESUMED, S.COMPLETED) not in counts
    assert sum(v for (a, b), v in counts.items() if b is S.COMPLETED) == 1


def _render_check() -> object:
    spec = importlib.util.spec_from_file_location(
        "render_check", Path(ROOT) / "diagrams" / "render" / "check.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def chromium(page: Path, screenshot: Path, profile: Path) -> subprocess.CompletedProcess[str]:
    check = _render_check()
    binary = shutil.which("chromium")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (.ci/run installs it)")
        pytest.skip("chromium is not installed")
    return subprocess.run(
        [
            binary,
            *check.CHROMIUM_FLAGS,  # type: ignore[attr-defined]
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            f"--screenshot={screenshot}",
            "--window-size=1100,2200",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def console_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def test_the_console_check_catches_a_page_with_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><body><script>notDefined();</script></body></html>")
    done = chromium(bad, tmp_path / "bad.png", tmp_path / "profile")
    assert any("notDefined" in line for line in console_lines(done.stderr)), done.stderr[-500:]


def test_the_report_opens_in_headless_chromium_without_a_console_message(tmp_path: Path) -> None:
    history(FileStore(tmp_path / ".lifecycle"))
    done = subprocess.run(
        [sys.executable, "-m", "lifecycle", "report", "--html", "report.html", "--project", "demo"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**environment(), "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    page = tmp_path / "report.html"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    screenshot = ARTIFACTS / "report-html.png"
    screenshot.unlink(missing_ok=True)
    shown = chromium(page, screenshot, tmp_path / "profile")
    assert shown.returncode == 0, shown.stderr[-500:]
    assert console_lines(shown.stderr) == []
    check = _render_check()
    assert check.inked_share(screenshot.read_bytes()) > 0.02  # type: ignore[attr-defined]
    shutil.copy(page, ARTIFACTS / "report.html")
