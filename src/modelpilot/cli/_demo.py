"""`modelpilot demo`: the seed's house-price example through the lifecycle, end to end.

Every step runs a real modelpilot command in-process and prints it first, so the demo doubles
as a tour of the CLI; it leaves a project directory to explore afterwards.
"""

from __future__ import annotations

import shlex
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.panel import Panel

from modelpilot.cli._root import app, console, run_app
from modelpilot.errors import ModelpilotError

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline


def _run(args: list[str], *, expect: int = 0) -> int:
    console.print(f"\n[bold cyan]$ modelpilot {shlex.join(args)}[/]")
    code = run_app(args)
    if code != expect:
        raise ModelpilotError(
            f"demo step `modelpilot {shlex.join(args)}` exited {code}, expected {expect}"
        )
    return code


def _stage(title: str, text: str) -> None:
    console.print()
    console.print(Panel(text, title=f"[bold]{title}[/]", expand=True))


def _house_model(frame: pd.DataFrame) -> Pipeline:
    from sklearn.compose import make_column_transformer
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    encode = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), ["location", "condition"]),
        remainder="passthrough",
    )
    model = make_pipeline(encode, HistGradientBoostingRegressor(max_iter=100, random_state=0))
    return model.fit(frame.drop(columns="price"), frame["price"])


@app.command()
def demo(
    directory: Annotated[
        Path, typer.Option("--dir", help="Where to create the demo project.")
    ] = Path("demo-project"),
    rows: Annotated[int, typer.Option("--rows", min=1000, help="Training rows.")] = 10_000,
    live: Annotated[
        bool,
        typer.Option(
            "--live/--no-live",
            help="Also run the online story: serving, drift, alerts, retraining, canary, reviews.",
        ),
    ] = True,
) -> None:
    """Run the house-price example through scoping, data checks, registry and batch scoring."""
    # Imported here: `modelpilot --help` should not pay for scikit-learn and skops.
    import pandas as pd
    import skops.io as sio
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline

    from modelpilot.datasets import HOUSE_FEATURES, house_prices
    from modelpilot.spec import render_project

    started = time.perf_counter()
    root = directory.resolve()
    if root.exists():
        shutil.rmtree(root)
    data = root / "data"
    data.mkdir(parents=True)
    project = ["--project", str(root)]
    summary: list[tuple[str, str]] = []

    # 1. Scoping --------------------------------------------------------------------------
    _stage(
        "1. Scoping",
        "The project file declares the task, the input schema, the key "
        "metrics a model must reach (MAE <= $25,000, R^2 >= 0.8) and the service objectives.",
    )
    (root / "modelpilot.yaml").write_text(
        render_project(
            project="house-prices",
            task="regression",
            target="price",
            features=HOUSE_FEATURES,
            key_metrics=["mae <= 25000", "r2 >= 0.8"],
        ),
        encoding="utf-8",
    )
    console.print(
        f"wrote {root / 'modelpilot.yaml'} ({len(HOUSE_FEATURES)} features, target "
        "price, key metrics mae <= 25000 and r2 >= 0.8)"
    )
    summary.append(
        ("Scoping", "modelpilot.yaml: regression on 9 features; mae <= 25000, r2 >= 0.8")
    )

    # 2. Data -----------------------------------------------------------------------------
    _stage(
        "2. Data",
        "A first export from the listings database has a problem: 60 houses "
        "appear twice with very different prices. The data check catches it.",
    )
    raw = house_prices(rows, seed=1, conflicting_duplicates=60)
    raw.to_csv(data / "listings_raw.csv", index=False)
    _run([*project, "data", "check", str(data / "listings_raw.csv")], expect=1)
    features = [f.name for f in HOUSE_FEATURES]
    conflicted = raw.groupby(features, dropna=False)["price"].transform("nunique") > 1
    clean = raw[~conflicted].reset_index(drop=True)
    train = clean.sample(frac=0.8, random_state=0)
    holdout = clean.drop(train.index)
    train.to_csv(data / "train.csv", index=False)
    holdout.to_parquet(data / "holdout.parquet")
    console.print(
        f"\ndropped the {int(conflicted.sum())} conflicting rows; "
        f"{len(train):,} rows to train on, {len(holdout):,} held out"
    )
    _run([*project, "data", "check", str(data / "train.csv")])
    summary.append(
        (
            "Data",
            f"caught {int(conflicted.sum())} rows with inconsistent labels; "
            "clean data passes every check",
        )
    )

    # 3. Modeling -------------------------------------------------------------------------
    _stage(
        "3. Modeling",
        "A baseline (price from size alone) and a gradient-boosted model are "
        "registered with their offline metrics; only one of them meets the targets.",
    )
    models = root / "models"
    models.mkdir()
    baseline = make_pipeline(
        make_column_transformer(("passthrough", ["size_sqft"])), LinearRegression()
    ).fit(train.drop(columns="price"), train["price"])
    sio.dump(baseline, models / "baseline.skops")
    _run(
        [
            *project,
            "register",
            str(models / "baseline.skops"),
            "--eval",
            str(data / "holdout.parquet"),
            "--data",
            str(data / "train.csv"),
            "--tag",
            "kind=baseline",
        ]
    )
    sio.dump(_house_model(train), models / "gbm.skops")
    _run(
        [
            *project,
            "register",
            str(models / "gbm.skops"),
            "--eval",
            str(data / "holdout.parquet"),
            "--data",
            str(data / "train.csv"),
            "--tag",
            "kind=gbm",
            "--alias",
            "production",
        ]
    )
    _run([*project, "models", "show", "house-prices"])
    summary.append(
        (
            "Modeling",
            "v1 (baseline) rejected for missing its targets; v2 (gradient "
            "boosting) registered and aliased production",
        )
    )

    # 4. Deployment, batch ----------------------------------------------------------------
    _stage(
        "4. Deployment (batch)",
        "This month's new listings are scored with the production "
        "model. A few rows are broken (a negative size, a missing location): they go to a "
        "rejects file with their reasons, and every prediction goes to the prediction log.",
    )
    new = house_prices(5000, seed=2).drop(columns="price")
    new = new.astype({"size_sqft": object, "location": object})
    new.loc[[10, 200], "size_sqft"] = -1
    new.loc[[30], "location"] = None
    new.loc[[400], "size_sqft"] = "unknown"
    new.to_csv(data / "new_listings.csv", index=False)
    _run(
        [
            *project,
            "score",
            str(data / "new_listings.csv"),
            "-o",
            str(root / "scored" / "new_listings_scored.parquet"),
        ]
    )
    scored = pd.read_parquet(root / "scored" / "new_listings_scored.parquet")
    summary.append(
        (
            "Deployment",
            f"scored {len(scored):,} listings (median price "
            f"${scored['prediction'].median():,.0f}); 4 broken rows rejected with reasons",
        )
    )

    if live:
        from modelpilot.cli._demo_live import ADMIN_TOKEN, run_live_story

        summary += run_live_story(root, console.print, _stage)
    elapsed = time.perf_counter() - started
    explore = (
        f"  modelpilot -p {directory} models list\n"
        f"  modelpilot -p {directory} models show house-prices@production\n"
        f"  modelpilot -p {directory} alias history house-prices\n"
        f"  modelpilot -p {directory} data check {directory}/data/listings_raw.csv --json"
    )
    if live:
        explore += (
            f"\n  modelpilot -p {directory} alerts --all\n"
            f"  modelpilot -p {directory} review list --status all\n"
            f"  modelpilot -p {directory} retrain runs\n"
            f"  MODELPILOT_ADMIN_TOKEN={ADMIN_TOKEN} modelpilot -p {directory} serve\n"
            f"    then open http://127.0.0.1:8000/?token={ADMIN_TOKEN} (the dashboard)"
        )
    _stage(
        "Summary",
        "\n".join(f"[bold]{stage}[/]: {escape(text)}" for stage, text in summary)
        + f"\n\nDone in {elapsed:.0f}s. Explore the project:\n"
        + explore,
    )
