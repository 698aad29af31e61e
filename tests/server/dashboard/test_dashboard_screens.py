"""The dashboard's working screens in headless Chromium against the live server: a reviewer
decides with the keyboard on a phone, the registry links a version to its rollouts and the
history, drift detail of one feature, and an admin handling an alert."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from browser_helpers import PHONE, open_screen, overflow, picture, severe, wait
from dashboard_helpers import REVIEWED, Dashboard

from live_server import ADMIN_TOKEN, DEPLOYMENT, PREDICT_TOKEN, REVIEW_TOKEN, auth, poll
from modelpilot.datasets import HOUSE_FEATURES, house_prices
from project_helpers import as_instances, open_prediction_log

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver

# A rollout step with a field the page does not know (say, which evidence decided a gate),
# rendered by the page's own module.
_UNKNOWN_STEP_FIELD = """
const done = arguments[arguments.length - 1];
import("/static/history.js").then((history) => {
  const item = history.stepItem({at: 1700000000, step: 0, weight: 25, gates: [],
                                 evidence: {metric: "error_rate", samples: 120}});
  done(item.querySelector('[data-field="evidence"]').textContent);
});
"""

# A classifier's answers, checked by the page's own module: one of the classes (GET /v1/reviews
# names them as text; the keys 1-9 and the select pick them), typed as the model's labels are:
# a class "1" of a model that answers numbers is the number 1.
_CLASS_ANSWERS = """
const done = arguments[arguments.length - 1];
import("/static/reviews.js").then((reviews) => {
  const answer = {kind: "class", classes: ["cheap", "dear"]};
  let refused = "";
  try { reviews.decisionOf("pricey", answer, "cheap"); } catch (err) { refused = err.message; }
  done([reviews.decisionOf(" dear ", answer, "cheap"), refused,
        reviews.decisionOf("1", {kind: "class", classes: ["0", "1"]}, 0)]);
});
"""


def _defer(dashboard: Dashboard, count: int) -> list[str]:
    """Predictions of the review deployment (assist: each waits for a person), once logged."""
    instances = as_instances(house_prices(count, seed=5))
    answer = httpx.post(
        f"{dashboard.server.url}/v1/deployments/{REVIEWED}/predict",
        json={"instances": instances},
        headers=auth(),
        timeout=30.0,
    )
    assert answer.status_code == 200, answer.text
    ids = [p["id"] for p in answer.json()["predictions"]]
    with open_prediction_log(dashboard.directory) as log:
        poll(lambda: log.exists(ids), what="the deferred predictions in the log")
    return ids


def _review(dashboard: Dashboard, review_id: str) -> dict[str, Any]:
    response = httpx.get(
        f"{dashboard.server.url}/v1/reviews/{review_id}", headers=auth(REVIEW_TOKEN), timeout=30
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _card(driver: WebDriver) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, "review-card").get_attribute("data-review") or ""


def test_a_reviewer_decides_three_predictions_with_the_keyboard_on_a_phone(
    dashboard: Dashboard, browser: WebDriver, tmp_path: Path
) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    _defer(dashboard, 5)
    open_screen(browser, dashboard.server.url, REVIEW_TOKEN, "reviews", PHONE)
    # A review token sees the review queue and nothing else.
    shown = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#nav a") if a.is_displayed()]
    assert shown == ["Reviews"]
    first = wait(browser, _card, "the oldest waiting prediction")
    assert "Why a person" in browser.find_element(By.ID, "review-why").text
    assert "assist automation" in browser.find_element(By.ID, "review-why").text
    # Its inputs and the model's suggestion, as the queue has them.
    waiting = _review(dashboard, first)
    inputs = browser.find_element(By.CSS_SELECTOR, "#review-card table.inputs").text
    assert all(name in inputs for name in waiting["inputs"]), inputs
    suggested = browser.find_element(By.ID, "review-suggestion").text
    assert float(suggested.replace(",", "")) == pytest.approx(waiting["suggestion"], rel=1e-3)
    picture(browser, tmp_path, "dashboard-reviews")
    assert overflow(browser) == 0, "the review screen is wider than a phone"

    keys = ActionChains(browser)
    decided: dict[str, Any] = {}  # review id: the label it must become

    def press(*typed: str) -> str:
        before = _card(browser)
        keys.send_keys(*typed).perform()
        return str(
            wait(
                browser,
                lambda d: _card(d) not in ("", before) and _card(d),
                f"the next prediction after {typed}",
            )
        )

    # 1. Accept the model's suggestion (A).
    decided[first] = _review(dashboard, first)["suggestion"]
    second = press("a")
    # 2. Skip one (S): it stays in the queue for someone else.
    third = press("s")
    # 3. Type the right answer (E, the price, Enter); what cannot be a price is refused on
    # the page, before anything is sent, and the card stays.
    keys.send_keys("e", "lots", Keys.ENTER).perform()
    refused = wait(
        browser,
        lambda d: d.find_element(By.ID, "review-message").text,
        "the page to refuse an answer that is not a number",
    )
    assert refused == 'this model\'s answer is a number (for example 312000); got "lots"'
    assert _card(browser) == third and _review(dashboard, third)["status"] == "pending"
    decided[third] = 312000
    fourth = press(Keys.BACKSPACE * 4, "312000", Keys.ENTER)
    # 4. Accept again.
    decided[fourth] = _review(dashboard, fourth)["suggestion"]
    press("a")

    assert _review(dashboard, second)["status"] == "pending"
    for review_id, label in decided.items():
        item = _review(dashboard, review_id)
        assert item["status"] == "decided" and item["decided_by"] == "env:review", item
        assert item["decision"] == label
    # The decisions are the predictions' labels in the log, as a decision by the API makes them.
    wanted = {_review(dashboard, r)["prediction_id"]: label for r, label in decided.items()}
    with open_prediction_log(dashboard.directory) as log:
        labeled = log.labeled(model=DEPLOYMENT)
    found = dict(zip(labeled["id"], labeled["label"], strict=True))
    assert {pid: found.get(pid) for pid in wanted} == wanted
    # Agreement with the model, per degree and over time, counts the decisions.
    wait(
        browser,
        lambda d: (
            "assist" in d.find_element(By.ID, "review-stats").text
            and d.find_elements(By.CSS_SELECTOR, "#chart-agreement path.line")
        ),
        "the agreement with the model",
    )

    # Someone else decides the card on screen first: the reviewer gets the API's 409.
    current = _card(browser)
    url = f"{dashboard.server.url}/v1/reviews/{current}/decision"
    assert httpx.post(url, json={"value": 1.0}, headers=auth(ADMIN_TOKEN)).status_code == 200
    again = httpx.post(url, json={"value": 2.0}, headers=auth(REVIEW_TOKEN))
    assert again.status_code == 409
    # The message line may still say how the last decision went: wait for a new one.
    before = browser.find_element(By.ID, "review-message").text
    keys.send_keys("a").perform()
    message = wait(
        browser,
        lambda d: (text := d.find_element(By.ID, "review-message").text) != before and text,
        "the page to say the review was decided already",
    )
    assert message == again.json()["message"]
    # A classifier's reviewer picks one of its classes; anything else is refused on the page.
    picked, refused, numbered = browser.execute_async_script(_CLASS_ANSWERS)
    assert picked == "dear" and numbered == 1
    assert refused == 'pick one of the classes: cheap, dear; got "pricey"'
    # Failed requests (the 409) are reported by the browser itself; nothing else.
    assert all(" 409 " in entry["message"] for entry in severe(browser))


def test_the_registry_links_a_version_to_its_rollouts_and_their_steps(
    dashboard: Dashboard, browser: WebDriver, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    open_screen(browser, dashboard.server.url, PREDICT_TOKEN, "registry")
    rows = {
        row.get_attribute("data-version"): row.text
        for row in browser.find_elements(By.CSS_SELECTOR, "#registry-versions tbody tr")
    }
    assert set(rows) == {"1", "2"}
    assert "@production" in rows["1"] and "serving" in rows["1"]
    assert "mae" in rows["2"] and "r2" in rows["2"]  # key metrics against their targets
    assert overflow(browser) == 0
    picture(browser, tmp_path, "dashboard-registry")

    browser.find_element(By.CSS_SELECTOR, '#registry-versions a[href$="/2"]').click()
    link = wait(
        browser,
        lambda d: d.find_elements(By.CSS_SELECTOR, "#version-rollouts a"),
        "v2's rollouts",
    )[0]
    assert f"canary on {DEPLOYMENT}" in link.text
    link.click()
    rollout = wait(
        browser,
        lambda d: d.find_elements(By.CSS_SELECTOR, "#history-list li.entry.highlight"),
        "the rollout in the deployment's history",
    )[0]
    assert rollout.get_attribute("id").startswith("rollout-")
    # Each step with its weight and gate results (an analysis runs every 2 seconds).
    step = wait(
        browser,
        lambda d: rollout.find_elements(By.CSS_SELECTOR, "li.step .gates .pill"),
        "a step of the canary with its gates",
    )
    assert step and "at 25%" in rollout.text
    picture(browser, tmp_path, "dashboard-history")
    assert overflow(browser) == 0
    # A field of a history entry the page does not know is shown as it is.
    shown = browser.execute_async_script(_UNKNOWN_STEP_FIELD)
    assert "error_rate" in shown and "120" in shown
    assert severe(browser) == []


def test_drift_detail_draws_a_features_distributions_and_its_statistic(
    dashboard: Dashboard, browser: WebDriver, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    open_screen(browser, dashboard.server.url, PREDICT_TOKEN, "drift")
    button = wait(
        browser,
        lambda d: d.find_elements(By.CSS_SELECTOR, 'button[data-feature="size_sqft"]'),
        "the features' verdicts",
    )[0]
    button.send_keys(Keys.ENTER)  # the keyboard opens it as a click does
    wait(
        browser,
        lambda d: d.find_elements(By.CSS_SELECTOR, "#chart-statistic path.line"),
        "the statistic over time",
    )
    detail = browser.find_element(By.ID, "drift-detail")
    assert detail.get_attribute("data-feature") == "size_sqft"
    assert "drifted" in detail.find_element(By.TAG_NAME, "h3").text  # 30% larger houses
    bars = detail.find_elements(By.CSS_SELECTOR, "#chart-distribution rect")
    assert len(bars) >= 20  # reference and current, side by side, per bin
    points = detail.find_element(By.CSS_SELECTOR, "#chart-statistic path.line")
    assert int(points.get_attribute("data-points")) >= 2
    # Registered with a holdout: each feature's share of the importance, measured by mae.
    assert "(share, by mae)" in detail.text
    bars = browser.find_elements(By.CSS_SELECTOR, "#drift-features .importance-cell")
    assert len(bars) == len(HOUSE_FEATURES)
    picture(browser, tmp_path, "dashboard-drift")
    assert overflow(browser) == 0
    assert severe(browser) == []


def test_an_admin_acknowledges_and_silences_an_alert(
    dashboard: Dashboard, browser: WebDriver, tmp_path: Path
) -> None:
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    ours = f'#alerts-active tr[data-deployment="{DEPLOYMENT}"]'

    def text_of(driver: WebDriver, selector: str) -> str:
        """The text of an element as drawn now (the screen redraws while it is polled)."""
        try:
            return str(driver.find_element(By.CSS_SELECTOR, selector).text)
        except (NoSuchElementException, StaleElementReferenceException):
            return ""

    def use(driver: WebDriver, selector: str, how: Any) -> bool:
        try:
            how(driver.find_element(By.CSS_SELECTOR, selector))
        except (NoSuchElementException, StaleElementReferenceException):
            return False
        return True

    open_screen(browser, dashboard.server.url, PREDICT_TOKEN, "alerts")
    wait(
        browser,
        lambda d: "admin token needed" in text_of(d, ours),  # a predict token reads only
        f"an active alert of {DEPLOYMENT} (its inputs drifted)",
    )
    open_screen(browser, dashboard.server.url, ADMIN_TOKEN, "alerts")
    alert_id = wait(
        browser,
        lambda d: d.execute_script(
            f"const row = document.querySelector('{ours}'); return row && row.dataset.alert;"
        ),
        "the alert",
    )
    mine = f'#alerts-active tr[data-alert="{alert_id}"]'
    wait(
        browser,
        lambda d: use(d, f'{mine} [data-action="acknowledge"]', lambda e: e.click()),
        "the acknowledge button",
    )
    wait(browser, lambda d: "ack env:admin" in text_of(d, mine), "the acknowledgement")
    # The durations keep what a person picks: polls wait while the focus is in the list.
    wait(
        browser,
        lambda d: use(
            d,
            f'{mine} [data-action="silence-for"]',
            lambda e: Select(e).select_by_visible_text("4 hours"),
        ),
        "the durations",
    )
    wait(
        browser,
        lambda d: use(d, f'{mine} [data-action="silence"]', lambda e: e.click()),
        "the silence button",
    )
    wait(browser, lambda d: "silenced until" in text_of(d, mine), "the silence")
    picture(browser, tmp_path, "dashboard-alerts")
    assert overflow(browser) == 0

    alerts = dashboard.server.get("/v1/alerts")
    [alert] = [a for a in alerts["active"] if str(a["id"]) == alert_id]
    assert alert["acknowledged_by"] == "env:admin"
    assert alert["silenced_until"] - alert["last_value_at"] > 3.9 * 3600
    # Both are in the audit log, which the deployment's history tells.
    history = dashboard.server.get(f"/v1/deployments/{DEPLOYMENT}/history", since=3600)
    actions = {e.get("action") for e in history["entries"] if e["kind"] == "audit"}
    assert {"alert.acknowledge", "alert.silence"} <= actions
    assert severe(browser) == []


def test_every_screen_reads_at_a_phones_width(dashboard: Dashboard, browser: WebDriver) -> None:
    # At a laptop's 1280 pixels the tests above check each screen; here, at a phone's 390:
    # nothing needs sideways scrolling (tables scroll inside their cards, forms wrap).
    for view in ("registry", f"registry/{DEPLOYMENT}/2", "history", "drift", "alerts"):
        open_screen(browser, dashboard.server.url, ADMIN_TOKEN, view, PHONE)
        assert overflow(browser) == 0, f"#/{view} is wider than a phone"
    assert severe(browser) == []
