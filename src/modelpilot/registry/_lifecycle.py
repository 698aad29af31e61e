"""A version's life after registration: re-evaluated against today's targets, archived.

Both change a version's status, which registration otherwise fixes once; each change is
written to the audit log with the status before and after.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, or_, select, update

from modelpilot.errors import ConflictError, ModelpilotError
from modelpilot.registry._registry import ModelRegistry, ModelVersion, _dumps
from modelpilot.store._tables import aliases, deployment_states, model_versions, rollouts

if TYPE_CHECKING:
    from modelpilot.registry._register import ProjectContext

__all__ = ["archive_version", "reevaluate", "version_users"]

# A rollout in one of these states still routes traffic to its candidate (rollout/_store.py).
_ACTIVE_ROLLOUTS = ("running", "paused", "switched")


def version_users(engine: Engine, name: str, version: int) -> list[str]:
    """What uses ``name`` v``version`` now: aliases, deployments that serve it or keep it as
    their last good version, and rollouts in progress that route traffic to it.

    Examples
    --------
    >>> from modelpilot.store import create_database
    >>> version_users(create_database("sqlite://"), "houses", 1)
    []
    """
    users: list[str] = []
    with engine.connect() as connection:
        for (alias,) in connection.execute(
            select(aliases.c.alias).where(
                aliases.c.model_name == name, aliases.c.version == version
            )
        ):
            users.append(f"alias {name}@{alias}")
        states = connection.execute(
            select(deployment_states.c.name, deployment_states.c.version).where(
                deployment_states.c.model == name,
                or_(
                    deployment_states.c.version == version,
                    deployment_states.c.last_good_version == version,
                ),
            )
        ).all()
        for deployment, serving in states:
            role = "serves it" if serving == version else "keeps it for rollback"
            users.append(f"deployment {deployment} ({role})")
        deployments = connection.execute(
            select(deployment_states.c.name).where(deployment_states.c.model == name)
        ).scalars()
        running = connection.execute(
            select(rollouts.c.id, rollouts.c.deployment).where(
                rollouts.c.deployment.in_(list(deployments)),
                rollouts.c.status.in_(_ACTIVE_ROLLOUTS),
                or_(rollouts.c.candidate_version == version, rollouts.c.primary_version == version),
            )
        ).all()
        users += [f"rollout {rid} of deployment {deployment}" for rid, deployment in running]
    return users


def archive_version(
    registry: ModelRegistry, name: str, version: int, *, actor: str, reason: str = ""
) -> ModelVersion:
    """Hide a version from listings and from a bare model name; refused while it is in use.

    Its artifact, metrics and log rows stay: ``NAME:VERSION`` still finds it.
    """
    target = registry.get(name, version)
    if target.archived:
        return target
    users = version_users(registry.engine, name, version)
    if users:
        raise ConflictError(
            f"{name} v{version} is in use ({'; '.join(users)}), so it was not archived; move "
            "the alias (`modelpilot alias set`) or deploy another version first"
        )
    _set_status(registry, target, "archived", actor=actor, action="archive", reason=reason)
    return registry.get(name, version)


def reevaluate(
    project: ProjectContext,
    name: str,
    version: int,
    eval_file: Path,
    *,
    actor: str,
    trust: bool = False,
) -> tuple[ModelVersion, dict[str, Any]]:
    """Evaluate a version on ``eval_file`` against the project's key metrics of today.

    The version's metrics and checks are replaced, and its status follows them: a rejected
    version that now meets every target becomes registered. A version in use (an alias, a
    deployment) is never demoted to rejected here, which would stop it loading on the next
    start: the result says so instead. Returns the version and what changed.
    """
    # Imported here: archiving should not pay for scikit-learn's metrics.
    from modelpilot.data import sha256_file
    from modelpilot.registry._assessment import assess_holdout
    from modelpilot.registry._metrics import check_targets
    from modelpilot.registry._register import evaluate

    registry = project.registry
    target = registry.get(name, version)
    if target.archived:
        raise ModelpilotError(
            f"{name} v{version} is archived; register the model again to evaluate it anew"
        )
    runtime = registry.load(target, trust=trust, force=True)
    values, n_rows = evaluate(runtime, project.spec, eval_file, features=target.features)
    checks = check_targets(values, project.spec.key_metrics)
    passed = all(c["passed"] for c in checks)
    users = version_users(registry.engine, name, version) if not passed else []
    status = "registered" if passed else ("rejected" if not users else target.status)
    metrics = {**values, "n_eval_rows": n_rows}
    metrics.update(assess_holdout(runtime, project.spec, eval_file, features=target.features))
    details = {
        "eval_path": str(eval_file.resolve()),
        "eval_sha256": sha256_file(eval_file),
        "previous_status": target.status,
        "status": status,
        "checks": checks,
    }
    with registry.engine.begin() as connection:
        connection.execute(
            update(model_versions)
            .where(model_versions.c.model_name == name, model_versions.c.version == version)
            .values(status=status, metrics_json=_dumps(metrics), checks_json=_dumps(checks))
        )
        registry._audit(connection, actor, "evaluate", f"{name}:{version}", details)
    return registry.get(name, version), {**details, "kept_because_in_use": users}


def _set_status(
    registry: ModelRegistry,
    target: ModelVersion,
    status: str,
    *,
    actor: str,
    action: str,
    reason: str,
) -> None:
    with registry.engine.begin() as connection:
        connection.execute(
            update(model_versions)
            .where(
                model_versions.c.model_name == target.name,
                model_versions.c.version == target.version,
            )
            .values(status=status)
        )
        registry._audit(
            connection,
            actor,
            action,
            f"{target.name}:{target.version}",
            {"previous_status": target.status, "status": status, "reason": reason},
        )
