"""`modelpilot keys create|show` and `modelpilot export edge`: signed bundles for devices."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from modelpilot.cli._root import app, console, open_project, print_json

keys_app = typer.Typer(
    help="The key pair that signs edge bundles and devices' assignments.", no_args_is_help=True
)
export_app = typer.Typer(
    help="Export a registered version for another runtime.", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")
app.add_typer(export_app, name="export")


@keys_app.command("create")
def keys_create(
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="Where to write the pair (default: .modelpilot/keys)."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing pair (devices need the new one).")
    ] = False,
) -> None:
    """Make the Ed25519 key pair: edge-signing.key (private, mode 0600) and edge-signing.pub
    (give it to every device's runner)."""
    from modelpilot.edge import KEYS_DIR, create_signing_keys

    target = directory or open_project().directory / KEYS_DIR
    private, public = create_signing_keys(target, force=force)
    console.print(f"private key: {escape(str(private))} (keep it on the server only)")
    console.print(f"public key:  {escape(str(public))} (give it to the devices)")
    console.print(public.read_text(encoding="utf-8").strip(), markup=False)


@keys_app.command("show")
def keys_show() -> None:
    """Print the public key the devices need (from the project's private key)."""
    from modelpilot.edge import load_signing_key

    project = open_project()
    console.print(load_signing_key(project.directory, project.environ).public_text, markup=False)


@export_app.command("edge")
def export_edge(
    ref: Annotated[
        str, typer.Argument(help="NAME@ALIAS or NAME:VERSION (e.g. houses@production).")
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="The bundle: a directory, or a file with --zip.")
    ],
    as_zip: Annotated[bool, typer.Option("--zip", help="Write one zip file instead.")] = False,
    eval_file: Annotated[
        Path | None,
        typer.Option(
            "--eval", help="Holdout to check on (default: the one it was registered with)."
        ),
    ] = None,
    engine: Annotated[
        str,
        typer.Option(
            "--engine", help="auto (exact kernels where they apply, else ONNX), kernels or onnx."
        ),
    ] = "auto",
    deployment: Annotated[
        str | None,
        typer.Option("--deployment", help="The deployment devices sync to (default: the model's)."),
    ] = None,
    trust: Annotated[
        bool, typer.Option("--trust", help="Allow pickle/joblib models (they can run code).")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Replace the output; export a rejected version.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Write a signed bundle a device runs without the server (modelpilot_edge.Bundle), after
    checking its answers equal the registered model's on the holdout."""
    from modelpilot.edge import export_bundle, load_signing_key

    project = open_project()
    key = load_signing_key(project.directory, project.environ)
    target = output.with_suffix(".zip") if as_zip and output.suffix != ".zip" else output
    report = export_bundle(
        project,
        ref,
        target,
        key=key,
        as_zip=as_zip,
        holdout=eval_file,
        engine=engine,
        deployment=deployment,
        trust=trust,
        force=force,
    )
    if as_json:
        print_json(report.to_dict())
        return
    console.print(
        f"exported {escape(report.model)}:{report.version} to {escape(str(report.path))} "
        f"({report.engine}; checked on {report.rows_checked} holdout rows; signed by key {key.id})"
    )
    for name, found in report.candidates.items():
        if found.get("ok"):
            exact = "bit for bit" if found.get("exact") else "within tolerance"
            console.print(
                f"  {name}: answers as the registered model, {exact}; "
                f"{found['one_row_us']:.0f} us CPU a row"
            )
        else:
            console.print(f"  {name}: not used ({escape(str(found.get('why')))})")
