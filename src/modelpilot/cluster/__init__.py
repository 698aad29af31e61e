"""A real multi-replica setup on one machine: PostgreSQL, replicas, HAProxy, Prometheus.

``modelpilot cluster demo`` and the end-to-end tests start the same processes
(``docs/scale-out.md``).
"""

from modelpilot.cluster._cluster import LocalCluster, shipped_rules
from modelpilot.cluster._demo import DemoReport, run_demo
from modelpilot.cluster._load import Load, LoadResult
from modelpilot.cluster._postgres import TemporaryPostgres, free_port
from modelpilot.cluster._process import ChildProcess, ClusterError
from modelpilot.cluster._project import CLUSTER_SETTINGS, build_project, merge_settings
from modelpilot.cluster._replicas import Replica

__all__ = [
    "CLUSTER_SETTINGS",
    "ChildProcess",
    "ClusterError",
    "DemoReport",
    "Load",
    "LoadResult",
    "LocalCluster",
    "Replica",
    "TemporaryPostgres",
    "build_project",
    "free_port",
    "merge_settings",
    "run_demo",
    "shipped_rules",
]
