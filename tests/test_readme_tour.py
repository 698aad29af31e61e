"""The README's "A tour of the CLI", run as written: every command of its block, in order, in a
fresh project directory, with a real server for the commands that talk HTTP.

The block is parsed from README.md, so a command renamed in the code and not in the README (or
the other way round) fails here. What the block leaves to the reader is done the way it says:
``cd DIR`` is the fresh directory, ``serve`` starts the real server with the block's arguments
(its address is found through ``.modelpilot/server.json``, as the other commands find it), the
token ``token create`` prints becomes ``$MODELPILOT_TOKEN``, and PREDICTION_ID and REVIEW_ID are
the ids earlier commands printed.
"""

from __future__ import annotations

import functools
import json
import re
import shlex
import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import skops.io as sio
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline

from live_server import LiveServer, poll, recorded_server, server_environ
from modelpilot.cli._app import main
from modelpilot.datasets import house_prices

README = Path(__file__).resolve().parents[1] / "README.md"


def tour_commands(text: str) -> list[list[str]]:
    """The commands of the first ``sh`` block after the "A tour of the CLI" heading, each as
    its argument list: continued lines joined, comments and blank lines dropped."""
    section = text.split("## A tour of the CLI", 1)[1]
    block = section.split("```sh\n", 1)[1].split("\n```", 1)[0]
    commands, pending = [], ""
    for line in block.splitlines():
        pending += line
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        words = shlex.split(pending, comments=True)
        pending = ""
        if words:
            commands.append(words)
    return commands


def test_the_tour_is_parsed_from_the_readme() -> None:
    commands = tour_commands(README.read_text(encoding="utf-8"))
    assert commands[0] == ["cd", "house-prices"]
    assert all(c[0] == "modelpilot" for c in commands[1:])
    assert len(commands) > 30


@pytest.fixture
def fresh_directory(
    tmp_path: Path,
    house_data: tuple[pd.DataFrame, pd.DataFrame],
    house_model_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    clean_environ: None,
) -> Iterator[Path]:
    """What the tour's first line says the directory holds: data and two trained models."""
    train, holdout = house_data
    directory = tmp_path / "house-prices"
    (directory / "data").mkdir(parents=True)
    (directory / "models").mkdir()
    train.to_csv(directory / "data" / "train.csv", index=False)
    holdout.to_parquet(directory / "data" / "holdout.parquet")
    house_prices(400, seed=2).drop(columns="price").to_csv(
        directory / "data" / "new_listings.csv", index=False
    )
    mansion = {
        "size_sqft": 15000, "bedrooms": 9, "bathrooms": 7, "age_years": 2, "lot_acres": 12.0,
        "distance_km": 3, "location": "urban", "condition": "excellent", "has_garage": True,
    }  # fmt: skip
    (directory / "data" / "mansion.json").write_text(json.dumps(mansion))
    baseline = make_pipeline(
        make_column_transformer(("passthrough", ["size_sqft"])), LinearRegression()
    ).fit(train.drop(columns="price"), train["price"])
    sio.dump(baseline, directory / "models" / "baseline.skops")
    shutil.copy(house_model_file, directory / "models" / "gbm.skops")
    monkeypatch.setenv("MODELPILOT_USER", "tour")
    yield directory


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_every_command_of_the_tour_works_in_order(
    fresh_directory: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    commands = tour_commands(README.read_text(encoding="utf-8"))
    ids: dict[str, str] = {}
    server: LiveServer | None = None
    server_context = None
    deferring = False  # set once `automation set ... partial` ran
    try:
        for words in commands:
            shown = shlex.join(words)
            if words[0] == "cd":
                assert words[1] == fresh_directory.name, shown
                monkeypatch.chdir(fresh_directory)
                continue
            args = [ids.get(word, word) for word in words[1:]]
            if args[0] == "serve":
                # Tokens come from the tokens file `token create` wrote, as for a user.
                environ = server_environ(predict_token=None, admin_token=None)
                environ["MODELPILOT_TOKEN"] = ids["TOKEN"]
                server_context = recorded_server(fresh_directory, args[1:], env=environ)
                server = server_context.__enter__()
                continue
            if deferring and args[0] == "predict":
                # The server reads the new degree within a second: ask until it defers.
                ask = functools.partial(_deferred, args, capsys)
                found = poll(ask, what=f"`{shown}` deferred")
                ids["REVIEW_ID"] = found
                continue
            code, out, err = _run(args, capsys)
            expected = {0, 1} if args[0] == "drift" else {0}  # drift exits 1 when it drifted
            assert code in expected, f"`{shown}` exited {code}:\n{out}\n{err}"
            if args[:2] == ["token", "create"]:
                ids["TOKEN"] = out.strip().splitlines()[-1]
                monkeypatch.setenv("MODELPILOT_TOKEN", ids["TOKEN"])
            elif args[0] == "predict":
                ids.setdefault("PREDICTION_ID", json.loads(out)[0]["id"])
            elif args[:2] == ["automation", "set"]:
                deferring = args[-1] in ("partial", "assist", "shadow", "human")
            elif args[:2] == ["review", "next"]:
                match = re.search(r"review (\S+)", out)
                assert match is not None, out
                assert match.group(1) == ids["REVIEW_ID"], out
            elif args[:2] == ["register", "models/baseline.skops"]:
                assert "rejected" in out, out
    finally:
        if server_context is not None:
            server_context.__exit__(None, None, None)
    assert server is not None, "the tour starts a server"
    labeled = pd.read_parquet(fresh_directory / "log.parquet")
    assert labeled.set_index("id").loc[ids["PREDICTION_ID"], "label"] == 412_000


def _deferred(args: list[str], capsys: pytest.CaptureFixture[str]) -> str | None:
    """Run a predict command; the review id if its answer was deferred to a person."""
    code, out, err = _run(args, capsys)
    assert code == 0, f"{out}\n{err}"
    [answer] = json.loads(out)
    return answer.get("review_id") if answer.get("status") == "deferred" else None
