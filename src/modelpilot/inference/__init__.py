"""The engine that runs models: deployments, micro-batching, scoring, the prediction log's writer,
pipeline steps and batch scoring. It knows nothing of HTTP, rollouts or alerts (see
``modelpilot.server`` for the server that assembles everything around it)."""

from typing import TYPE_CHECKING

from modelpilot._lazy import lazy_exports

if TYPE_CHECKING:
    from modelpilot.inference._batch import ScoringResult, recent_run_rows, score_file
    from modelpilot.inference._batch_chunk import ChunkScorer, load_scoring
    from modelpilot.inference._batching import Answers, BatchStats, MicroBatcher
    from modelpilot.inference._dask import (
        DaskScoringJob,
        MissingExtra,
        dask_client,
        new_run_id,
        score_on_dask,
    )
    from modelpilot.inference._deadletter import DeadLetterFile
    from modelpilot.inference._deployments import (
        Deployment,
        DeploymentManager,
        LoadedVersion,
        Router,
        StaticRouter,
    )
    from modelpilot.inference._jobs import BatchFailed, BatchJob, JobResult, LogPolicy
    from modelpilot.inference._logfaults import LogQueueFull, LogUnavailable
    from modelpilot.inference._logwriter import LogWriter
    from modelpilot.inference._outputs import ModelOutput, run_model
    from modelpilot.inference._pipeline import (
        MODEL_STEP,
        FunctionStep,
        ModelStep,
        Pipeline,
        PipelineBuilder,
        StepFailed,
        StepObserver,
        load_function,
        steps_deployment,
    )
    from modelpilot.inference._recorder import OutputObserver, PredictionRecorder, failure_text
    from modelpilot.inference._scoring import batch_scorer

__all__ = [
    "MODEL_STEP",
    "Answers",
    "BatchFailed",
    "BatchJob",
    "BatchStats",
    "ChunkScorer",
    "DaskScoringJob",
    "DeadLetterFile",
    "Deployment",
    "DeploymentManager",
    "FunctionStep",
    "JobResult",
    "LoadedVersion",
    "LogPolicy",
    "LogQueueFull",
    "LogUnavailable",
    "LogWriter",
    "MicroBatcher",
    "MissingExtra",
    "ModelOutput",
    "ModelStep",
    "OutputObserver",
    "Pipeline",
    "PipelineBuilder",
    "PredictionRecorder",
    "Router",
    "ScoringResult",
    "StaticRouter",
    "StepFailed",
    "StepObserver",
    "batch_scorer",
    "dask_client",
    "failure_text",
    "load_function",
    "load_scoring",
    "new_run_id",
    "recent_run_rows",
    "run_model",
    "score_file",
    "score_on_dask",
    "steps_deployment",
]

_SOURCES = {
    "_batch": ("ScoringResult", "recent_run_rows", "score_file"),
    "_batch_chunk": ("ChunkScorer", "load_scoring"),
    "_dask": ("DaskScoringJob", "MissingExtra", "dask_client", "new_run_id", "score_on_dask"),
    "_batching": ("Answers", "BatchStats", "MicroBatcher"),
    "_deployments": ("Deployment", "DeploymentManager", "LoadedVersion", "Router", "StaticRouter"),
    "_jobs": ("BatchFailed", "BatchJob", "JobResult", "LogPolicy"),
    "_deadletter": ("DeadLetterFile",),
    "_logfaults": ("LogQueueFull", "LogUnavailable"),
    "_logwriter": ("LogWriter",),
    "_outputs": ("ModelOutput", "run_model"),
    "_pipeline": (
        "MODEL_STEP",
        "FunctionStep",
        "ModelStep",
        "Pipeline",
        "PipelineBuilder",
        "StepFailed",
        "StepObserver",
        "load_function",
        "steps_deployment",
    ),
    "_recorder": ("OutputObserver", "PredictionRecorder", "failure_text"),
    "_scoring": ("batch_scorer",),
}

if not TYPE_CHECKING:  # hidden from mypy, which would otherwise accept any name
    __getattr__, __dir__ = lazy_exports(__name__, _SOURCES, globals(), __all__)
