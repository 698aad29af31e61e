"""The overview in headless Chromium against the live server with traffic: the page loads,
every chart draws data, the deployment and the alerts show (an alert of a deployment without
traffic marked stale), it reads at 1280 and 390 pixels, and the console stays clean."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from browser_helpers import (
    DESKTOP,
    PHONE,
    open_screen,
    overflow,
    picture,
    screen,
    severe,
    wait,
)
from dashboard_helpers import REVIEWED, Dashboard

from live_server import DEPLOYMENT, PREDICT_TOKEN

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver

# How many points each chart's lines must have: a line, not a lone dot.
CHARTS = {
    "chart-latency": 3,  # p50, p95, p99
    "chart-throughput": 1,
    "chart-errors": 2,  # server errors, rejected inputs
    "chart-drift": 10,  # nine features and the prediction
    "chart-key-mae": 1,
    "chart-key-r2": 1,
}
# Per chart: [number of lines, fewest points of a line, dashed reference lines].
_CHART_STATE = """
const out = {};
for (const figure of document.querySelectorAll("#charts figure.chart")) {
  const counts = Array.from(figure.querySelectorAll("path.line"),
                            (p) => Number(p.getAttribute("data-points")));
  out[figure.id] = [counts.length, counts.length ? Math.min(...counts) : 0,
                    figure.querySelectorAll("line.ref").length];
}
return out;
"""
# Draws the drift chart as it looks before the first drift check, with the page's own module,
# and answers where its text lies against the card: [card left, right, text left, right].
_EMPTY_DRIFT_CHART = """
const done = arguments[arguments.length - 1];
import("/static/charts.js").then((charts) => {
  const figure = document.getElementById("chart-drift");
  charts.drawChart(figure, {domain: [0, 900], format: String, zero: true, series: [], refs: [],
                            empty: "no drift check yet: it needs a version registered with " +
                                   "--data and monitoring.drift.min_rows predictions"});
  const card = figure.getBoundingClientRect();
  const text = figure.querySelector(".chart-empty").getBoundingClientRect();
  done([card.left, card.right, text.left, text.right, text.height]);
});
"""


def _charts_drawn(driver: WebDriver) -> dict[str, list[int]] | None:
    state: dict[str, list[int]] = driver.execute_script(_CHART_STATE)
    for chart, lines in CHARTS.items():
        n_lines, fewest, _ = state.get(chart, [0, 0, 0])
        if n_lines < lines or fewest < 2:
            return None
    return state


def test_the_dashboard_shows_the_live_server_at_a_glance(
    dashboard: Dashboard, browser: WebDriver, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    open_screen(browser, dashboard.server.url, PREDICT_TOKEN, "overview", (1600, 1000))
    charts = wait(browser, _charts_drawn, "every chart to draw lines of data")
    # The token went to session storage, out of the address bar.
    assert "token=" not in browser.current_url

    row = browser.find_element(By.CSS_SELECTOR, f'tr[data-deployment="{DEPLOYMENT}"]')
    assert DEPLOYMENT in row.text and "v1" in row.text
    assert "canary" in row.text  # v2's canary: running, or how it ended
    assert "%" in row.find_element(By.CSS_SELECTOR, ".traffic-cell").text

    # Objectives and targets are drawn as dashed lines.
    assert charts["chart-latency"][2] == 1 and charts["chart-errors"][2] == 1
    assert charts["chart-key-mae"][2] == 1 and charts["chart-key-r2"][2] == 1
    legend = browser.find_element(By.CSS_SELECTOR, "#chart-drift .legend").text
    assert "size_sqft" in legend and "(prediction)" in legend

    # Read in one go: the page redraws its tiles at every poll (elements found one by one
    # could be replaced in between).
    tiles = browser.execute_script(
        "return Object.fromEntries(Array.from(document.querySelectorAll('.tile'),"
        " (t) => [t.dataset.tile, t.innerText]));"
    )
    assert {"Requests", "Latency p99", "Error rate", "Drift", "mae", "r2", "Alerts"} <= set(tiles)
    assert tiles["Latency p99"].split("\n")[1].endswith(" ms")
    # The page says how many points it drew (benchmarks/dashboard_paint.py reads it).
    assert int(browser.find_element(By.ID, "charts").get_attribute("data-points")) > 20

    # The review deployment answers the reviewers' few requests and nothing else: its
    # (drift) alert keeps firing on the model's log, marked stale, with the reason.
    stale = wait(
        browser,
        lambda d: d.find_elements(
            By.CSS_SELECTOR, f'#alerts tr[data-stale="yes"][data-deployment="{REVIEWED}"]'
        ),
        f"an alert of {REVIEWED}, which gets no traffic, to be marked stale",
    )[0]
    badge = stale.find_element(By.CSS_SELECTOR, ".pill.stale")
    assert badge.text.startswith("stale: no data for")
    assert f"no requests to {REVIEWED}" in badge.get_attribute("title")

    assert severe(browser) == []
    picture(browser, tmp_path, "dashboard")

    # Readable at a laptop's 1280 and a phone's 390 pixels: nothing to scroll sideways.
    for width, height in (DESKTOP, PHONE):
        screen(browser, width, height)
        # The charts are drawn again at the new width (a resize, then at the next poll).
        wait(browser, lambda d: overflow(d) == 0, f"the overview to fit {width} px", 10.0)


def test_an_empty_chart_keeps_its_reason_inside_its_card(
    dashboard: Dashboard, browser: WebDriver
) -> None:
    # At 1400 px three charts share a row: the reason of an empty drift chart, one SVG text
    # line before, ran out of its card on both sides.
    open_screen(browser, dashboard.server.url, PREDICT_TOKEN, "overview", (1400, 900))
    left, right, text_left, text_right, height = browser.execute_async_script(_EMPTY_DRIFT_CHART)
    assert left <= text_left and text_right <= right, (left, right, text_left, text_right)
    assert height > 20  # wrapped on two lines or more, not cut


def test_without_a_token_the_page_asks_for_one(dashboard: Dashboard, browser: WebDriver) -> None:
    from selenium.webdriver.common.by import By

    screen(browser, *DESKTOP)
    browser.get(f"{dashboard.server.url}/")
    browser.execute_script("sessionStorage.clear()")  # a token of an earlier test
    browser.refresh()
    severe(browser)
    login = wait(
        browser,
        lambda d: (
            d.find_element(By.ID, "login")
            if d.find_element(By.ID, "login").is_displayed()
            else None
        ),
        "the token box",
    )
    assert "Enter your token" in login.text
    assert not browser.find_element(By.ID, "dashboard").is_displayed()
    # The page asked before its first request, so no request failed.
    assert severe(browser) == []

    browser.find_element(By.ID, "token-input").send_keys("not-the-token")
    browser.find_element(By.CSS_SELECTOR, "#login-form button").click()
    wait(
        browser,
        lambda d: "refused" in d.find_element(By.ID, "login-reason").text,
        "the page to say the token was refused",
    )
    # The browser itself reports the refused request; nothing else may be an error.
    assert all(" 401 " in entry["message"] for entry in severe(browser))

    browser.find_element(By.ID, "token-input").send_keys(PREDICT_TOKEN)
    browser.find_element(By.CSS_SELECTOR, "#login-form button").click()
    wait(
        browser,
        lambda d: d.find_element(By.ID, "status").get_attribute("data-state") == "ok",
        "the dashboard after the right token",
    )
    assert browser.find_element(By.ID, "dashboard").is_displayed()
    assert not browser.find_element(By.ID, "login").is_displayed()
    # A predict token does not see the review queue (a review token's screen).
    nav = browser.find_element(By.ID, "nav")
    assert not nav.find_element(By.CSS_SELECTOR, '[data-view="reviews"]').is_displayed()
    assert nav.find_element(By.CSS_SELECTOR, '[data-view="registry"]').is_displayed()
    assert severe(browser) == []
