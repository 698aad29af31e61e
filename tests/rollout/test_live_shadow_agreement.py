"""A shadow rollout on the real server: ``modelpilot_shadow_agreement_ratio`` on ``/metrics``
says how often the candidate agreed with the primary on the mirrored requests, and goes away
with the rollout."""

from __future__ import annotations

from pathlib import Path

import httpx
import joblib
import numpy as np
import pandas as pd
import skops.io as sio
from candidates import ShiftedCandidate
from prometheus_client.parser import text_string_to_metric_families
from rollout_helpers import DEPLOYMENT
from rollout_live import LIVE_ROLLOUT, live_server, poll

from live_server import auth
from project_helpers import as_instances, register, write_project

OFFSET = 40_000.0  # the candidate's shift: it agrees (within 10%) on houses above 400,000
GAUGE = "modelpilot_shadow_agreement_ratio"


def agreement_gauges(url: str) -> dict[tuple[str, str], float]:
    """The gauge's samples on ``/metrics``: (deployment, version) -> value."""
    text = httpx.get(f"{url}/metrics", timeout=30.0).text
    return {
        (s.labels["deployment"], s.labels["version"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == GAUGE
    }


def test_the_shadow_agreement_gauge_follows_the_mirrored_requests(
    tmp_path: Path, house_data: tuple[pd.DataFrame, pd.DataFrame], house_model: Path
) -> None:
    settings = {"rollout": LIVE_ROLLOUT, "monitoring": {"interval_s": 1}}
    directory = write_project(tmp_path / "project", holdout=house_data[1], settings=settings)
    register(directory, house_model, production=True)
    house = sio.load(house_model, trusted=sio.get_untrusted_types(file=house_model))
    joblib.dump(ShiftedCandidate(house, offset=OFFSET), tmp_path / "shifted.joblib")
    candidate = register(directory, tmp_path / "shifted.joblib", production=False, trust=True)
    instances = as_instances(house_data[1])[:80]

    with live_server(directory) as server:
        assert agreement_gauges(server.url) == {}  # declared, but no shadow yet
        response = server.admin("deploy", version=candidate, strategy="shadow", force=True)
        assert response.status_code == 200, response.text
        primary: list[float] = []
        with httpx.Client(base_url=server.url, headers=auth(), timeout=60.0) as client:
            for start in range(0, len(instances), 10):
                answered = client.post(
                    f"/v1/deployments/{DEPLOYMENT}/predict",
                    json={"instances": instances[start : start + 10]},
                )
                assert answered.status_code == 200, answered.text
                primary += [float(p["prediction"]) for p in answered.json()["predictions"]]
        # What agreement means for a regression: within 10% of the primary's prediction.
        expected = float(np.mean(OFFSET <= 0.1 * np.abs(np.asarray(primary))))
        assert 0.0 < expected < 1.0, expected  # a figure that could be wrong either way

        def settled() -> dict[tuple[str, str], float] | None:
            if server.status()["rollout"]["shadow"].get("mirrored") != len(instances):
                return None  # the log has not committed every mirrored row yet
            gauges = agreement_gauges(server.url)
            value = gauges.get((DEPLOYMENT, str(candidate)))
            return gauges if value is not None and abs(value - expected) < 1e-9 else None

        # The controller analyses the log every 0.5 s; the monitor reads its last figure.
        gauges = poll(settled, what=f"the gauge at {expected}", timeout=60)
        assert list(gauges) == [(DEPLOYMENT, str(candidate))]
        shadow = server.status()["rollout"]["shadow"]
        assert (shadow["mirrored"], shadow["agreement"]) == (len(instances), expected)

        assert server.admin("abort", reason="gauge checked").status_code == 200
        poll(lambda: agreement_gauges(server.url) == {}, what="the gauge to go", timeout=60)
