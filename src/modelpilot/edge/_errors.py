"""Errors of exporting bundles and serving a fleet of devices."""

from __future__ import annotations

from collections.abc import Sequence

from modelpilot.errors import ModelpilotError
from modelpilot_edge import EdgeError

__all__ = ["EdgeFailure", "ExportError", "NotExportable"]


class ExportError(ModelpilotError):
    """A bundle could not be written (a check failed, the target exists, ...)."""

    kind = "export_error"


class NotExportable(ExportError):
    """No engine can carry the model to a device: says which step stops each one.

    Examples
    --------
    >>> print(NotExportable("houses:2", ["kernels: the step FunctionTransformer", "onnx: no"]))
    houses:2 cannot be exported to a device: kernels: the step FunctionTransformer; onnx: no. ...
    """

    def __init__(self, version: str, reasons: Sequence[str]) -> None:
        super().__init__(
            f"{version} cannot be exported to a device: {'; '.join(reasons)}. A device runs "
            "modelpilot's exact kernels (scikit-learn linear models and tree ensembles, XGBoost, "
            "LightGBM and CatBoost trees, after imputers, scalers and encoders) or an ONNX graph "
            "skl2onnx can convert; fit the model without the step named, or serve it online"
        )


class EdgeFailure(ModelpilotError):
    """An error of the device runner's code (a key, a bundle), as modelpilot reports errors."""

    def __init__(self, error: EdgeError) -> None:
        super().__init__(error.message)
        self.kind = error.kind
