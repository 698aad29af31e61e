"""Headless Chromium for the dashboard's browser tests: starting it, waiting on the page, the
console's errors, and the pictures of docs/dashboard.md.

Debian's ``chromium`` and ``chromium-driver`` packages provide the browser (``.ci/run``
installs them). Without them the tests skip, except on CI (``CI`` set), where they fail.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
DOCS_IMG = Path(__file__).parents[3] / "docs" / "img"
WAIT_S = 60.0
DESKTOP = (1280, 900)
PHONE = (390, 844)


def require_browser() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package (pip install -e '.[dev]')")
    if not missing:
        return
    message = (
        f"the dashboard's browser tests need {' and '.join(missing)}; install Debian's "
        "browser with `apt-get install chromium chromium-driver` (.ci/run does)"
    )
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def start_browser(directory: Path) -> WebDriver:
    """Headless Chromium driven by the system's chromedriver (Selenium Manager never runs:
    it would try to download a browser and a driver; the caller sets SE_OFFLINE)."""
    require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1600,1000",
        f"--user-data-dir={directory / 'chromium-profile'}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(
        executable_path=str(CHROMEDRIVER), log_output=str(directory / "chromedriver.log")
    )
    return webdriver.Chrome(service=service, options=options)


def screen(driver: WebDriver, width: int, height: int) -> None:
    """Exactly one ``width`` x ``height`` screen (a phone's is a mobile one), however the
    window manager of the headless browser sizes its window."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
    )


def wait(driver: WebDriver, condition: Any, what: str, timeout: float = WAIT_S) -> Any:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition)
    except TimeoutException:
        logs = driver.get_log("browser")
        pytest.fail(f"gave up waiting for {what} after {timeout:.0f} s; browser log: {logs}")


def severe(driver: WebDriver) -> list[dict[str, Any]]:
    """The console's errors since the last call."""
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def open_screen(
    driver: WebDriver, url: str, token: str, view: str, size: tuple[int, int] = DESKTOP
) -> None:
    """The page with ``token`` (as a person opens it: ``/?token=...``), showing ``#/view`` on a
    screen of ``size``; the console's earlier messages are dropped."""
    severe(driver)
    screen(driver, *size)
    driver.get(f"{url}/?token={token}#/{view}")
    wait(
        driver,
        lambda d: d.find_element("id", "status").get_attribute("data-state") == "ok",
        f"the {view} screen to load",
    )


def overflow(driver: WebDriver) -> int:
    """How many pixels the page is wider than the screen (0: nothing to scroll sideways)."""
    return int(
        driver.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
    )


def picture(driver: WebDriver, tmp_path: Path, name: str) -> Path:
    """A screenshot; with MODELPILOT_UPDATE_SCREENSHOT=1 it also replaces docs/img/NAME.png."""
    shot = tmp_path / f"{name}.png"
    assert driver.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000  # a drawn page, not a blank one
    if os.environ.get("MODELPILOT_UPDATE_SCREENSHOT") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, DOCS_IMG / f"{name}.png")
    return shot
