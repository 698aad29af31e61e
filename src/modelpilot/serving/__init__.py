"""Deployment: batch scoring and the online server (JSON API and Open Inference Protocol)."""

from modelpilot.serving._app import ServingApp, create_app
from modelpilot.serving._auth import Principal, TokenStore
from modelpilot.serving._batch import ScoringResult, recent_run_rows, score_file
from modelpilot.serving._batching import MicroBatcher
from modelpilot.serving._deployments import (
    Deployment,
    DeploymentManager,
    LoadedVersion,
    Router,
    StaticRouter,
)
from modelpilot.serving._logwriter import LogEntry, LogQueueFull, LogWriter
from modelpilot.serving._outputs import ModelOutput, run_model
from modelpilot.serving._pipeline import (
    FunctionStep,
    ModelStep,
    Pipeline,
    PipelineBuilder,
    StepFailed,
    StepObserver,
    load_function,
    steps_deployment,
)
from modelpilot.serving._server import app_factory, serve
from modelpilot.serving._state import ServerState, build_state

__all__ = [
    "Deployment",
    "DeploymentManager",
    "FunctionStep",
    "LoadedVersion",
    "LogEntry",
    "LogQueueFull",
    "LogWriter",
    "MicroBatcher",
    "ModelOutput",
    "ModelStep",
    "Pipeline",
    "PipelineBuilder",
    "Principal",
    "Router",
    "ScoringResult",
    "ServerState",
    "ServingApp",
    "StaticRouter",
    "StepFailed",
    "StepObserver",
    "TokenStore",
    "app_factory",
    "build_state",
    "create_app",
    "load_function",
    "recent_run_rows",
    "run_model",
    "score_file",
    "serve",
    "steps_deployment",
]
