"""``python -m modelpilot_edge``: a device's commands (verify, predict, sync, update, ...).

PATH is a device directory (``EdgeDevice``: bundles, log, updates) or a bundle (a zip file or
a directory) with its log beside it. Settings left out come from the environment:
``MODELPILOT_EDGE_PUBLIC_KEY``, ``MODELPILOT_URL``, ``MODELPILOT_TOKEN``,
``MODELPILOT_EDGE_DEVICE``. Answers are JSON on stdout; an error is one line on stderr and
exit code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ._bundle import Bundle
from ._device import EdgeDevice
from ._errors import EdgeError
from ._manifest import read_bundle

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m modelpilot_edge", description="Run a modelpilot bundle on a device."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, text: str, *, server: bool = False) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=text, description=text)
        sub.add_argument("path", help="a device directory, or a bundle (zip file or directory)")
        sub.add_argument("--public-key", help="the signing key's public half (text or file)")
        sub.add_argument("--device", help="this device's id (default: the host's name)")
        if server:
            sub.add_argument("--url", help="the modelpilot server")
            sub.add_argument("--token", help="a predict token for it")
        return sub

    command("verify", "Check a bundle's signature and checksums; print what it is.")
    predict = command("predict", "Answer records given as JSON (one object or a list).")
    predict.add_argument("--json", required=True, help="a record, a list of them, or @FILE")
    command("sync", "Upload the predictions not synced yet.", server=True)
    update = command("update", "Run the version the server assigns this device.", server=True)
    update.add_argument("--deployment", help="the deployment, before the first bundle")
    install = command("install", "Install a bundle file on a device and switch to it.")
    install.add_argument("bundle", help="the bundle to install")
    command("rollback", "Go back to the device's previous bundle.")
    command("status", "The current bundle, and the log's size, pending and dropped records.")
    drift = command("drift", "Drift of the recent logged inputs against the reference profile.")
    drift.add_argument("--last", type=int, default=1000, help="how many recent predictions")
    return parser


def _setting(value: str | None, name: str, environ: Mapping[str, str], what: str) -> str:
    found = value or environ.get(name)
    if not found:
        raise EdgeError(f"{what} is needed: pass it as an option or set {name}")
    return found


def _is_device(path: Path) -> bool:
    return path.is_dir() and ((path / "device.json").exists() or (path / "bundles").is_dir())


def run(argv: Sequence[str], environ: Mapping[str, str] = os.environ) -> Any:
    """Run one command; returns what it prints."""
    args = _parser().parse_args(list(argv))
    key = _setting(args.public_key, "MODELPILOT_EDGE_PUBLIC_KEY", environ, "the public key")
    path = Path(args.path)
    device = args.device or environ.get("MODELPILOT_EDGE_DEVICE")
    if args.command == "verify":
        from ._keys import load_public_key

        read_bundle(path, public_key=load_public_key(key))
        with Bundle.open(path, public_key=key, logging=False, device_id=device) as bundle:
            return {**bundle.describe(), "verified": True, "smoke_problems": bundle.smoke_check()}
    url = token = ""
    if getattr(args, "url", None) is not None or args.command in ("sync", "update"):
        url = _setting(args.url, "MODELPILOT_URL", environ, "the server's URL")
        token = args.token or environ.get("MODELPILOT_TOKEN") or ""
    if args.command == "install" or _is_device(path):
        with EdgeDevice(
            path, public_key=key, device_id=device, deployment=getattr(args, "deployment", None)
        ) as edge:
            return _on_device(edge, args, url, token)
    with Bundle.open(path, public_key=key, device_id=device) as bundle:
        return _on_bundle(bundle, args, url, token)


def _records(text: str) -> Any:
    if text.startswith("@"):
        text = Path(text[1:]).read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise EdgeError(
            f"--json is not valid JSON ({exc}); send a record {{...}} or a list"
        ) from None


def _on_bundle(bundle: Bundle, args: argparse.Namespace, url: str, token: str) -> Any:
    if args.command == "predict":
        return bundle.predict(_records(args.json))
    if args.command == "sync":
        return vars(bundle.sync(url, token or None))
    if args.command == "status":
        return {**bundle.describe(), "log": None if bundle.log is None else bundle.log.stats()}
    if args.command == "drift":
        return bundle.drift(last=args.last)
    raise EdgeError(f"{args.command} needs a device directory, not a bundle")


def _on_device(edge: EdgeDevice, args: argparse.Namespace, url: str, token: str) -> Any:
    if args.command == "install":
        return vars(edge.install(args.bundle))
    if args.command == "update":
        return vars(edge.update(url, token or None))
    if args.command == "rollback":
        return vars(edge.rollback())
    if args.command == "status":
        current = None if edge.bundle is None else edge.bundle.describe()
        return {"bundle": current, "previous": edge.state["previous"], "log": edge.log.stats()}
    bundle = edge.bundle
    if bundle is None:
        raise EdgeError(f"the device in {edge.directory} has no bundle yet: install or update")
    return _on_bundle(bundle, args, url, token)


def main(argv: Sequence[str] | None = None) -> int:
    """The console entry point: 0 when the command did its work, 2 on an error."""
    try:
        result = run(sys.argv[1:] if argv is None else argv)
    except EdgeError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
