"""`modelpilot predict` and `feedback`: a running server's predictions and their labels."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from modelpilot.cli._remote import Url, client
from modelpilot.cli._root import app, print_json
from modelpilot.errors import DataError, ModelpilotError

Token = Annotated[str | None, typer.Option(help="Token (default $MODELPILOT_TOKEN).")]


def _records(data: str) -> Any:
    """``--json``'s value: JSON text, ``@FILE`` for a file's, or ``-`` for standard input's."""
    if data == "-":
        text, source = sys.stdin.read(), "standard input"
    elif data.startswith("@"):
        path = Path(data[1:])
        try:
            text, source = path.read_text(encoding="utf-8"), str(path)
        except OSError as exc:
            raise ModelpilotError(
                f"--json {data}: cannot read {path} ({exc.strerror or exc}); pass JSON text, "
                "@FILE or - for standard input"
            ) from None
    else:
        text, source = data, "--json"
    try:
        instances: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelpilotError(f"{source} is not valid JSON ({exc})") from None
    if not isinstance(instances, dict | list):
        raise ModelpilotError(f"{source} must hold one record {{...}} or a list of records [...]")
    return instances


@app.command()
def predict(
    deployment: Annotated[str, typer.Argument(help="Deployment name.")],
    data: Annotated[
        str,
        typer.Option(
            "--json",
            help="One record or a list of records, as JSON; @FILE reads a file, - stdin.",
        ),
    ],
    url: Url = None,
    token: Token = None,
    key: Annotated[str | None, typer.Option(help="Sticky routing key, e.g. a user id.")] = None,
) -> None:
    """Ask a running server for predictions and print them as JSON."""
    instances = _records(data)
    with client(url, token) as remote:
        print_json(remote.predict(deployment, instances, key=key))


def _label(text: str) -> Any:
    """A label as typed: JSON when it parses (412000, 1.5, true, "spam"), else the text."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _labels_file(path: Path) -> tuple[list[str], list[Any]]:
    """Ids and labels from a CSV (cells read as typed on the command line) or Parquet file
    with an ``id`` (or ``prediction_id``) column and a ``label`` column."""
    from modelpilot.data import file_format

    if not path.is_file():
        raise DataError(f"{path}: no such file; pass a CSV or Parquet file with id,label columns")
    rows: list[dict[str, Any]]
    if file_format(path) == "parquet":
        import pyarrow.parquet as pq

        rows = pq.read_table(path).to_pylist()
        columns = list(rows[0]) if rows else []
    else:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            columns = list(reader.fieldnames or [])
            rows = [{k: _label(v) if k == "label" else v for k, v in r.items()} for r in reader]
    id_column = next((c for c in ("id", "prediction_id") if c in columns), None)
    if id_column is None or "label" not in columns:
        raise DataError(
            f"{path}: expected columns id (or prediction_id) and label; it has "
            f"{', '.join(columns) or 'none'}"
        )
    return [str(r[id_column]) for r in rows], [r["label"] for r in rows]


@app.command()
def feedback(
    prediction_id: Annotated[
        str | None, typer.Argument(help="The prediction's id.", show_default=False)
    ] = None,
    label: Annotated[
        str | None,
        typer.Argument(help='The true label (JSON, e.g. 250000 or "spam").', show_default=False),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            "-f",
            help="Many labels: a CSV or Parquet file with columns id,label.",
            show_default=False,
        ),
    ] = None,
    url: Url = None,
    token: Token = None,
    replace: Annotated[
        bool,
        typer.Option("--replace", help="Correct the label it has (the old one stays in history)."),
    ] = False,
) -> None:
    """Send the ground-truth label of a prediction (or, with --file, of many)."""
    if file is not None:
        if prediction_id is not None:
            raise ModelpilotError("pass either PREDICTION_ID LABEL or --file, not both")
        ids, labels = _labels_file(file)
    elif prediction_id is None or label is None:
        raise ModelpilotError(
            "pass PREDICTION_ID LABEL (for example `modelpilot feedback 0190... 412000`) or "
            "--file labels.csv with columns id,label"
        )
    else:
        ids, labels = [prediction_id], [_label(label)]
    with client(url, token) as remote:
        result = remote.feedback(ids, labels, replace=replace)
    print_json(result)
    if result.get("rejected"):
        raise _FeedbackRejected(int(result["rejected"]), len(result.get("results", [])))


class _FeedbackRejected(ModelpilotError):
    """Exit code 1 when the server rejected a label. An error, not ``typer.Exit(1)``: typer
    raises its own ``Exit``, which ``cli._root.run_app`` does not translate, so it returned 0."""

    exit_code = 1
    kind = "feedback_rejected"

    def __init__(self, rejected: int, total: int) -> None:
        super().__init__(f"{rejected} of {total} label(s) rejected; the results above say why")
