"""The model registry: immutable numbered versions, moving aliases with history, an audit log.

Why one module of ~430 lines: every write here (a version, an alias move, an audit entry) is one
transaction whose checks read the same rows its queries read, and those queries are the
registry's reads; what stands alone lives apart (the version types ``_versions.py``, artifacts
``_artifacts.py``, registration ``_register.py``, status changes ``_lifecycle.py``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Engine, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from modelpilot.errors import ModelpilotError, NotFoundError, RejectedVersionError
from modelpilot.registry._artifacts import ArtifactRef, ArtifactStore
from modelpilot.registry._versions import ModelRef, ModelVersion, parse_ref
from modelpilot.spec import FeatureSpec
from modelpilot.store._tables import alias_history, aliases, audit_log, model_versions, models
from modelpilot.types import Clock

if TYPE_CHECKING:
    from modelpilot.runtime import ModelRuntime

__all__ = ["ModelRef", "ModelRegistry", "ModelVersion", "parse_ref"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")


def _dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()


class ModelRegistry:
    """Versions, aliases and the audit log in the metadata database; artifacts in a store.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from modelpilot.store import create_database
    >>> from modelpilot.registry import LocalArtifactStore
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> (tmp / "m.onnx").write_bytes(b"not really a model")
    18
    >>> registry = ModelRegistry(create_database("sqlite://"), LocalArtifactStore(tmp / "store"))
    >>> v1 = registry.create_version("houses", tmp / "m.onnx", features=[], actor="ann")
    >>> registry.set_alias("houses", "production", 1, actor="ann").version
    1
    >>> registry.resolve("houses@production").version, registry.resolve("houses").version
    (1, 1)
    """

    def __init__(
        self, engine: Engine, artifacts: ArtifactStore, *, clock: Clock = time.time
    ) -> None:
        self.engine = engine
        self.artifacts = artifacts
        self.clock = clock

    # ---- writing ----------------------------------------------------------------------
    def create_version(
        self,
        name: str,
        artifact: Path,
        *,
        features: Sequence[FeatureSpec],
        actor: str,
        flavor: str | None = None,
        task: str | None = None,
        target: str | None = None,
        profile: Mapping[str, Any] | None = None,
        metrics: Mapping[str, Any] | None = None,
        checks: Sequence[Mapping[str, Any]] = (),
        lineage: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> ModelVersion:
        """Store the artifact, then add the version in one transaction (all or nothing)."""
        if not _NAME.match(name):
            raise ModelpilotError(
                f"model name {name!r} is not allowed; use letters, digits, '.', '_' and '-' "
                "(up to 200 characters, starting with a letter or digit)"
            )
        from modelpilot.runtime import detect_flavor

        kind = flavor or detect_flavor(artifact)
        ref = self.artifacts.put(artifact)
        status = "rejected" if any(not c["passed"] for c in checks) else "registered"
        now = self.clock()
        schema = {
            "features": [f.model_dump(mode="json") for f in features],
            "task": task,
            "target": target,
        }
        for attempt in range(5):
            try:
                with self.engine.begin() as connection:
                    exists = connection.execute(
                        select(models.c.name).where(models.c.name == name)
                    ).first()
                    if exists is None:
                        connection.execute(
                            insert(models).values(name=name, created_at=now, description="")
                        )
                    latest = connection.execute(
                        select(func.max(model_versions.c.version)).where(
                            model_versions.c.model_name == name
                        )
                    ).scalar()
                    version = (latest or 0) + 1
                    connection.execute(
                        insert(model_versions).values(
                            model_name=name,
                            version=version,
                            status=status,
                            flavor=kind,
                            artifact_uri=ref.uri,
                            artifact_sha256=ref.sha256,
                            artifact_filename=ref.filename,
                            schema_json=_dumps(schema),
                            profile_json=_dumps(dict(profile or {})),
                            metrics_json=_dumps(dict(metrics or {})),
                            checks_json=_dumps([dict(c) for c in checks]),
                            lineage_json=_dumps(
                                {**dict(lineage or {}), "artifact_bytes": ref.size_bytes}
                            ),
                            tags_json=_dumps(dict(tags or {})),
                            created_at=now,
                            created_by=actor,
                        )
                    )
                    self._audit(
                        connection,
                        actor,
                        "register",
                        f"{name}:{version}",
                        {"status": status, "sha256": ref.sha256},
                    )
                return self.get(name, version)
            except IntegrityError:
                if attempt == 4:  # two registrations racing for the same number, five times
                    raise
        raise AssertionError("unreachable")

    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        actor: str,
        reason: str = "",
        force: bool = False,
    ) -> ModelVersion:
        """Point ``alias`` at ``version``, keeping the previous target in the alias history."""
        if not re.match(r"^[A-Za-z0-9_.-]{1,100}$", alias):
            raise ModelpilotError(
                f"alias {alias!r} is not allowed; use letters, digits, '.', '_', '-'"
            )
        target = self.get(name, version)
        if target.archived:
            raise ModelpilotError(
                f"{name} v{version} is archived; an alias cannot point at it. Register the "
                "model again to bring it back as a new version"
            )
        if target.rejected and not force:
            raise RejectedVersionError(name, version, target.failed_checks)
        now = self.clock()
        with self.engine.begin() as connection:
            previous = connection.execute(
                select(aliases.c.version).where(
                    aliases.c.model_name == name, aliases.c.alias == alias
                )
            ).scalar()
            if previous is None:
                connection.execute(
                    insert(aliases).values(
                        model_name=name,
                        alias=alias,
                        version=version,
                        updated_at=now,
                        updated_by=actor,
                    )
                )
            else:
                connection.execute(
                    update(aliases)
                    .where(
                        aliases.c.model_name == name,
                        aliases.c.alias == alias,
                    )
                    .values(version=version, updated_at=now, updated_by=actor)
                )
            connection.execute(
                insert(alias_history).values(
                    model_name=name,
                    alias=alias,
                    version=version,
                    previous_version=previous,
                    at=now,
                    by=actor,
                    reason=reason,
                )
            )
            self._audit(
                connection,
                actor,
                "alias.set",
                f"{name}@{alias}",
                {
                    "version": version,
                    "previous": previous,
                    "reason": reason,
                    "forced": bool(force and target.rejected),
                },
            )
        return self.get(name, version)

    def audit(self, actor: str, action: str, target: str, details: Mapping[str, Any]) -> None:
        with self.engine.begin() as connection:
            self._audit(connection, actor, action, target, details)

    def _audit(
        self, connection: Any, actor: str, action: str, target: str, details: Mapping[str, Any]
    ) -> None:
        connection.execute(
            insert(audit_log).values(
                at=self.clock(),
                actor=actor,
                action=action,
                target=target,
                details_json=_dumps(dict(details)),
            )
        )

    # ---- reading ----------------------------------------------------------------------
    def _row_to_version(self, row: Any, alias_names: list[str]) -> ModelVersion:
        schema = orjson.loads(row.schema_json)
        return ModelVersion(
            name=row.model_name,
            version=row.version,
            status=row.status,
            flavor=row.flavor,
            artifact=ArtifactRef(
                row.artifact_uri,
                row.artifact_sha256,
                row.artifact_filename,
                int(orjson.loads(row.lineage_json).get("artifact_bytes", 0)),
            ),
            features=[FeatureSpec.model_validate(f) for f in schema.get("features", [])],
            task=schema.get("task"),
            target=schema.get("target"),
            profile=orjson.loads(row.profile_json),
            metrics=orjson.loads(row.metrics_json),
            checks=orjson.loads(row.checks_json),
            lineage=orjson.loads(row.lineage_json),
            tags=orjson.loads(row.tags_json),
            created_at=row.created_at,
            created_by=row.created_by,
            aliases=alias_names,
        )

    def _aliases_of(self, connection: Any, name: str) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for alias, version in connection.execute(
            select(aliases.c.alias, aliases.c.version)
            .where(aliases.c.model_name == name)
            .order_by(aliases.c.alias)
        ):
            out.setdefault(version, []).append(alias)
        return out

    def get(self, name: str, version: int) -> ModelVersion:
        with self.engine.connect() as connection:
            row = connection.execute(
                select(model_versions).where(
                    model_versions.c.model_name == name, model_versions.c.version == version
                )
            ).first()
            if row is None:
                self._require_model(connection, name)
                known = (
                    connection.execute(
                        select(model_versions.c.version)
                        .where(model_versions.c.model_name == name)
                        .order_by(model_versions.c.version)
                    )
                    .scalars()
                    .all()
                )
                raise NotFoundError(
                    "version",
                    f"{name}:{version}",
                    hint=f"{name} has versions {', '.join(map(str, known))}",
                )
            return self._row_to_version(row, self._aliases_of(connection, name).get(version, []))

    def _require_model(self, connection: Any, name: str) -> None:
        if connection.execute(select(models.c.name).where(models.c.name == name)).first() is None:
            names = (
                connection.execute(select(models.c.name).order_by(models.c.name)).scalars().all()
            )
            hint = (
                f"registered models: {', '.join(names)}"
                if names
                else "no model is registered yet; run `modelpilot register`"
            )
            raise NotFoundError("model", name, hint=hint)

    def alias_version(self, name: str, alias: str) -> int:
        with self.engine.connect() as connection:
            self._require_model(connection, name)
            version = connection.execute(
                select(aliases.c.version).where(
                    aliases.c.model_name == name, aliases.c.alias == alias
                )
            ).scalar()
            if version is None:
                names = sorted({a for v in self._aliases_of(connection, name).values() for a in v})
                raise NotFoundError(
                    "alias",
                    f"{name}@{alias}",
                    hint=(
                        f"{name} has aliases {', '.join(names)}"
                        if names
                        else f"set one with `modelpilot alias set {name} {alias} VERSION`"
                    ),
                )
            return int(version)

    def latest_version(self, name: str) -> int:
        """The newest version that is not archived."""
        with self.engine.connect() as connection:
            self._require_model(connection, name)
            latest = connection.execute(
                select(func.max(model_versions.c.version)).where(
                    model_versions.c.model_name == name, model_versions.c.status != "archived"
                )
            ).scalar()
            if latest is None:
                raise NotFoundError(
                    "version",
                    name,
                    hint=f"every version of {name} is archived; name one as {name}:VERSION",
                )
            return int(latest)

    def resolve(self, ref: str | ModelRef) -> ModelVersion:
        """The version a reference names; a bare name means its latest version."""
        parsed = parse_ref(ref) if isinstance(ref, str) else ref
        if parsed.version is not None:
            return self.get(parsed.name, parsed.version)
        if parsed.alias is not None:
            return self.get(parsed.name, self.alias_version(parsed.name, parsed.alias))
        return self.get(parsed.name, self.latest_version(parsed.name))

    def list_models(self) -> list[dict[str, Any]]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(
                    model_versions.c.model_name,
                    func.count(),
                    func.max(model_versions.c.version),
                    func.max(model_versions.c.created_at),
                )
                .group_by(model_versions.c.model_name)
                .order_by(model_versions.c.model_name)
            ).all()
            statuses: dict[str, dict[int, str]] = {}
            for name, version, status in connection.execute(
                select(
                    model_versions.c.model_name, model_versions.c.version, model_versions.c.status
                ).order_by(model_versions.c.model_name, model_versions.c.version)
            ):
                statuses.setdefault(name, {})[int(version)] = status
            out = []
            for name, count, latest, updated in rows:
                alias_map = self._aliases_of(connection, name)
                out.append(
                    {
                        "name": name,
                        "versions": count,
                        "latest": latest,
                        "updated_at": updated,
                        "aliases": {a: v for v, names in alias_map.items() for a in names},
                        "status": statuses.get(name, {}),
                    }
                )
            return out

    def list_versions(self, name: str) -> list[ModelVersion]:
        with self.engine.connect() as connection:
            self._require_model(connection, name)
            alias_map = self._aliases_of(connection, name)
            rows = connection.execute(
                select(model_versions)
                .where(model_versions.c.model_name == name)
                .order_by(model_versions.c.version)
            ).all()
            return [self._row_to_version(r, alias_map.get(r.version, [])) for r in rows]

    def alias_history(self, name: str, alias: str | None = None) -> list[dict[str, Any]]:
        query = select(alias_history).where(alias_history.c.model_name == name)
        if alias is not None:
            query = query.where(alias_history.c.alias == alias)
        with self.engine.connect() as connection:
            rows = connection.execute(query.order_by(alias_history.c.id)).mappings().all()
        return [dict(r) for r in rows]

    def audit_entries(
        self,
        *,
        limit: int = 100,
        targets: Sequence[str] = (),
        prefixes: Sequence[str] = (),
        since: float | None = None,
    ) -> list[dict[str, Any]]:
        """The newest entries first; with ``targets`` or ``prefixes``, only those about them
        (a target equal to one of ``targets``, or starting with one of ``prefixes``)."""
        query = select(audit_log)
        if targets or prefixes:
            query = query.where(
                or_(
                    audit_log.c.target.in_(list(targets)),
                    *(audit_log.c.target.startswith(p, autoescape=True) for p in prefixes),
                )
            )
        if since is not None:
            query = query.where(audit_log.c.at >= since)
        with self.engine.connect() as connection:
            rows = (
                connection.execute(query.order_by(audit_log.c.id.desc()).limit(limit))
                .mappings()
                .all()
            )
        return [{**dict(r), "details": orjson.loads(r["details_json"])} for r in rows]

    # ---- loading ----------------------------------------------------------------------
    def load(
        self, version: ModelVersion, *, trust: bool = False, force: bool = False
    ) -> ModelRuntime:
        """Verify the artifact's sha256, then load it through the runtime protocol."""
        if version.rejected and not force:
            raise RejectedVersionError(version.name, version.version, version.failed_checks)
        if version.archived and not force:
            raise ModelpilotError(
                f"{version.name} v{version.version} is archived; pass --force to load it anyway"
            )
        # Imported here: listing models or moving an alias should not pay for scikit-learn.
        from modelpilot.runtime import load_runtime

        path = self.artifacts.verify(version.artifact)
        # The server hands models 2-D arrays in the schema's column order (see load_runtime).
        columns = [feature.name for feature in version.features]
        return load_runtime(path, flavor=version.flavor, trust=trust, columns=columns)
