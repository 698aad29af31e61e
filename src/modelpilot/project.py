"""A project: its directory, its project file and the stores they point to, opened together."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from modelpilot.spec import PROJECT_FILE, ProjectSpec, find_project_dir, load_project
from modelpilot.store import create_database
from modelpilot.types import Clock

if TYPE_CHECKING:
    from modelpilot.registry import ArtifactStore, ModelRegistry
    from modelpilot.store import PredictionStore

__all__ = ["Project"]


@dataclass
class Project:
    """Everything a command needs, built lazily from one directory.

    ``environ`` is injected (defaults to ``os.environ``) so tests never touch the real one;
    ``MODELPILOT_DATABASE_URL`` overrides the file's ``store.database_url``. ``clock`` stamps
    what the prediction log records (labels' arrival): a test that runs a server on a fake
    clock sets it to that clock, so that "labels since a run started" compares like with like.
    """

    directory: Path
    spec: ProjectSpec
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    clock: Clock = field(default=time.time)

    @classmethod
    def open(
        cls,
        directory: str | os.PathLike[str] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> Project:
        env = os.environ if environ is None else environ
        if directory is None:
            directory = env.get("MODELPILOT_PROJECT") or None
        root = find_project_dir(directory) if directory is None else Path(directory).resolve()
        spec = load_project(root / PROJECT_FILE)
        return cls(root, spec, env)

    @property
    def file(self) -> Path:
        return self.directory / PROJECT_FILE

    @cached_property
    def engine(self) -> Engine:
        url = self.environ.get("MODELPILOT_DATABASE_URL") or self.spec.store.database_url
        return create_database(url, base_dir=self.directory)

    @cached_property
    def artifacts(self) -> ArtifactStore:
        from modelpilot.registry import LocalArtifactStore

        path = Path(self.spec.store.artifacts)
        return LocalArtifactStore(path if path.is_absolute() else self.directory / path)

    @cached_property
    def registry(self) -> ModelRegistry:
        from modelpilot.registry import ModelRegistry

        return ModelRegistry(self.engine, self.artifacts)

    @cached_property
    def prediction_log(self) -> PredictionStore:
        """The log ``logging.backend`` names: the metadata database's, or Delta tables."""
        from modelpilot.store import open_prediction_log  # pandas and pyarrow: only when used

        return open_prediction_log(
            self.spec.logging,
            engine=self.engine,
            base_dir=self.directory,
            environ=self.environ,
            clock=self.clock,
        )

    def resolve(self, path: str | os.PathLike[str]) -> Path:
        """A path from the project file, relative to the project directory."""
        candidate = Path(path)
        return candidate if candidate.is_absolute() else self.directory / candidate
