"""A device's bundles: install, switch atomically, roll back on command or on failed smoke
checks, drift and the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_helpers import linear_files, write_signed
from modelpilot_edge import BundleRejected, EdgeDevice, EdgeError, KeyPair
from modelpilot_edge.__main__ import main, run


def test_install_update_and_roll_back_on_command(tmp_path: Path, keys: KeyPair) -> None:
    v1 = write_signed(tmp_path / "v1.zip", linear_files(1), keys)
    v2 = write_signed(tmp_path / "v2.zip", linear_files(2, intercept=5.0), keys)
    with EdgeDevice(tmp_path / "device", public_key=keys.public, device_id="pos-1") as device:
        assert device.install(v1).status == "updated"
        assert device.predict({"size": 100, "rooms": 3})["prediction"] == "no"
        report = device.install(v2)
        assert (report.status, report.version, report.previous) == ("updated", 2, 1)
        assert device.predict({"size": 100, "rooms": 3})["prediction"] == "yes"
        assert device.install(v2).status == "current"
        back = device.rollback()
        assert (back.status, back.version) == ("rolled_back", 1)
        assert device.predict({"size": 100, "rooms": 3})["prediction"] == "no"
    # The switch is on disk: a restarted device runs what it ran.
    with EdgeDevice(tmp_path / "device", public_key=keys.public, device_id="pos-1") as device:
        assert device.bundle is not None and device.bundle.version == 1
        assert device.log.pending_count() == 3  # one log across bundles
        versions = [r["version"] for r in device.log.pending(10)[0]]
        assert versions == [1, 2, 1]


def test_a_bundle_failing_its_smoke_checks_is_rolled_back(tmp_path: Path, keys: KeyPair) -> None:
    good = write_signed(tmp_path / "good.zip", linear_files(1), keys)
    bad = write_signed(tmp_path / "bad.zip", linear_files(2), keys, wrong_smoke=True)
    with EdgeDevice(tmp_path / "device", public_key=keys.public, device_id="pos-1") as device:
        device.install(good)
        report = device.install(bad)
        assert report.status == "rolled_back"
        assert (report.version, report.previous) == (1, 2)
        assert "smoke checks failed" in report.reason
        assert device.bundle is not None and device.bundle.version == 1
    state = json.loads((tmp_path / "device" / "device.json").read_text())
    assert len(state["refused"]) == 1


def test_a_device_refuses_a_tampered_bundle_before_copying_it(
    tmp_path: Path, keys: KeyPair
) -> None:
    bundle = write_signed(tmp_path / "b", linear_files(1), keys, as_zip=False)
    (bundle / "model.json").write_text("{}")
    with EdgeDevice(tmp_path / "device", public_key=keys.public, device_id="pos-1") as device:
        with pytest.raises(BundleRejected, match=r"model\.json changed"):
            device.install(bundle)
        assert list((tmp_path / "device" / "bundles").iterdir()) == []
        with pytest.raises(EdgeError, match="has no bundle yet"):
            device.predict({"size": 1, "rooms": 1})


def test_a_device_id_must_fit_a_label(tmp_path: Path, keys: KeyPair) -> None:
    v1 = write_signed(tmp_path / "v1.zip", linear_files(1), keys)
    with EdgeDevice(tmp_path / "d", public_key=keys.public, device_id="bad id!") as device:
        with pytest.raises(EdgeError, match="device id 'bad id!' is not allowed"):
            device.install(v1)


def test_drift_flags_the_feature_that_moved(tmp_path: Path, keys: KeyPair) -> None:
    from edge_helpers import tree_files

    bundle_path = write_signed(tmp_path / "t.zip", tree_files(), keys)
    with EdgeDevice(tmp_path / "device", public_key=keys.public, device_id="pos-1") as device:
        device.install(bundle_path)
        # size was uniform on [0, 200] in training; here it sits in [150, 200]: drifted.
        # city keeps its half-and-half.
        for i in range(200):
            record = {"size": 150 + i % 50, "rooms": 1, "city": "ab"[i % 2], "garage": True}
            device.predict(record)
        assert device.bundle is not None
        report = device.bundle.drift(last=200)
    assert report["drifted"] == ["size"]
    assert report["features"]["size"]["psi"] > 1.0
    assert report["features"]["city"]["psi"] < 0.01


def test_the_command_line(
    tmp_path: Path, keys: KeyPair, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = write_signed(tmp_path / "v1.zip", linear_files(1), keys)
    environ = {"MODELPILOT_EDGE_PUBLIC_KEY": keys.public, "MODELPILOT_EDGE_DEVICE": "pos-9"}
    assert run(["verify", str(bundle)], environ)["smoke_problems"] == []
    device = tmp_path / "device"
    assert run(["install", str(device), str(bundle)], environ)["status"] == "updated"
    answer = run(["predict", str(device), "--json", '{"size": 1, "rooms": 1}'], environ)
    assert answer["prediction"] == "no"
    status = run(["status", str(device)], environ)
    assert status["bundle"]["device"] == "pos-9" and status["log"]["pending"] == 1
    assert main(["predict", str(device), "--json", "{not json"]) == 2  # no key in os.environ
    assert "error:" in capsys.readouterr().err
