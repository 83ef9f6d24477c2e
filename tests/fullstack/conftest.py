"""Fixtures of the full-stack tests: a real Airflow (4 processes) + the Spotfire emulator, and a real browser.

``fullstack`` (session) starts the emulator and ``airflow api-server``, ``scheduler``, ``triggerer`` and
``dag-processor`` as separate processes in a throwaway AIRFLOW_HOME (see ``stack.py``), waits until every
component reports healthy and every example DAG file is parsed, and on teardown stops them all by PID and
asserts that they (and their children) exited. When a test using it fails, the tail of every process log
is attached to the report.

``browser_page`` drives Debian's ``/usr/bin/chromium`` through Playwright (never ``playwright install``);
the test is skipped with a reason when chromium or playwright is missing.
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fullstack.stack import FullStack

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
_STACKS: list[FullStack] = []


@pytest.fixture(scope="session")
def fullstack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FullStack]:
    stack = FullStack(tmp_path_factory.mktemp("airflow-home"))
    _STACKS.append(stack)
    try:
        stack.start()
    except Exception as exc:
        report = stack.stop()
        pytest.fail(
            f"the full stack did not start: {exc}\nstop report: {report}\n{stack.all_tails()}", pytrace=False
        )
    if any("outcome" in getattr(item, "fixturenames", ()) for item in request.session.items):
        # the DAG-run tests are collected: start the runs now, they proceed while other tests run
        stack.trigger_examples()
    print(
        f"\nfull stack up in {stack.startup_seconds:.1f}s: Airflow {stack.api_url}, emulator "
        f"{stack.emulator_url}, home {stack.home}"
    )
    yield stack
    report = stack.stop()
    not_exited = [name for name, code in report.exit_codes.items() if code is None]
    assert not (report.killed or report.survivors or not_exited), (
        f"processes did not stop on SIGTERM: killed={report.killed} survivors={report.survivors} "
        f"not exited={not_exited}\n{stack.all_tails()}"
    )
    assert set(report.exit_codes) == {p.name for p in stack.procs}


def _browser_missing() -> str | None:
    if not CHROMIUM.exists():
        return "chromium not installed: apt-get install chromium"
    if importlib.util.find_spec("playwright") is None:
        return "playwright (Python package) not installed: it is in the dev dependency group"
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip browser tests before any fixture (the full stack) is started for them."""
    if item.get_closest_marker("browser") and (reason := _browser_missing()):
        pytest.skip(reason)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    report = yield
    stack = getattr(item, "funcargs", {}).get("fullstack")
    if report.failed and isinstance(stack, FullStack):
        report.sections.append(("full-stack process logs (tails)", stack.all_tails()))
    return report


@pytest.fixture
def browser_page(tmp_path: Path) -> Iterator[Any]:
    """A Playwright page in a fresh headless Debian chromium profile (skipped when unavailable)."""
    if reason := _browser_missing():
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    profile = Path(tempfile.mkdtemp(prefix="chromium-profile-", dir=tmp_path))
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000},
        )
        context.set_default_timeout(30_000)
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()
    shutil.rmtree(profile, ignore_errors=True)
