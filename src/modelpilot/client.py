"""A Python client for a running modelpilot server, made for notebooks and scripts.

Records go in as a dict, a list of dicts, a dict of columns or a pandas DataFrame, with plain
Python or NumPy values; labels go back one at a time or many at once. A server that is not
there raises :class:`~modelpilot.errors.ServerUnreachableError` (a
:class:`~modelpilot.errors.ModelpilotError`), never an ``httpx`` exception.

Examples
--------
With a server running (``modelpilot serve``), in a notebook::

    client = Client("http://127.0.0.1:8000", token="mp_...")
    [p] = client.predict("house-prices", {"size_sqft": 1800, "bedrooms": 3, ...})
    client.feedback(p["id"], 412_000)["accepted"]

Without one, the error says what to do (port 9 is the discard port: nothing answers there):

>>> from modelpilot.errors import ServerUnreachableError
>>> with Client("http://127.0.0.1:9") as client:
...     try:
...         client.deployments()
...     except ServerUnreachableError as error:
...         print(error)
cannot reach http://127.0.0.1:9: is `modelpilot serve` running? set --url or MODELPILOT_URL
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import orjson

from modelpilot.errors import ModelpilotError, ServerUnreachableError

__all__ = ["DEFAULT_URL", "Client", "ClientError", "feedback_items", "instances_of"]

#: Where ``modelpilot serve`` listens unless told otherwise.
DEFAULT_URL = "http://127.0.0.1:8000"


class ClientError(ModelpilotError):
    """The server answered with an error; ``status``, ``kind`` and ``problems`` say which."""

    def __init__(self, status: int, payload: Mapping[str, Any]) -> None:
        self.status = status
        self.http_status = status
        self.kind = str(payload.get("error", "error"))
        self.problems = list(payload.get("problems", []))
        self.payload = dict(payload)
        super().__init__(f"HTTP {status}: {payload.get('message', payload.get('error', ''))}")


def _plain(value: Any) -> Any:
    """A value orjson cannot write (a pandas Timestamp, a Decimal) as its Python equivalent."""
    item = getattr(value, "item", None)
    if callable(item):
        return item()
    isoformat = getattr(value, "isoformat", None)
    if callable(isoformat):
        return isoformat()
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def _is_column(value: Any) -> bool:
    return isinstance(value, list | tuple) or getattr(value, "ndim", 0) == 1


def instances_of(data: Any) -> list[dict[str, Any]]:
    """Records from what a notebook holds: one record (a dict), a list of records, a dict of
    equally long columns (lists or 1-D NumPy arrays), or a pandas DataFrame.

    Values stay as they are (NumPy scalars included); :class:`Client` writes them as JSON,
    NaN as null.

    Examples
    --------
    >>> import numpy as np
    >>> instances_of({"size": np.float64(80.0), "city": "a"})
    [{'size': np.float64(80.0), 'city': 'a'}]
    >>> instances_of({"size": np.array([80.0, 95.5]), "city": ["a", "b"]})
    [{'size': np.float64(80.0), 'city': 'a'}, {'size': np.float64(95.5), 'city': 'b'}]
    >>> import pandas as pd
    >>> instances_of(pd.DataFrame({"size": [80.0], "city": ["a"]}))
    [{'size': 80.0, 'city': 'a'}]
    """
    to_dict = getattr(data, "to_dict", None)
    if callable(to_dict) and hasattr(data, "columns"):  # a pandas DataFrame
        records: list[dict[str, Any]] = to_dict(orient="records")
        return [{str(k): v for k, v in r.items()} for r in records]
    if isinstance(data, Mapping):
        if data and all(_is_column(v) for v in data.values()):
            lengths = {len(v) for v in data.values()}
            if len(lengths) != 1:
                raise ModelpilotError(
                    "a dict of columns needs columns of one length; got lengths "
                    + ", ".join(f"{k}: {len(v)}" for k, v in data.items())
                )
            columns = {str(k): list(v) for k, v in data.items()}
            n = lengths.pop()
            return [{k: column[i] for k, column in columns.items()} for i in range(n)]
        return [dict(data)]
    if isinstance(data, Sequence) and not isinstance(data, str | bytes):
        out = []
        for index, record in enumerate(data):
            if not isinstance(record, Mapping):
                raise ModelpilotError(
                    f"instances[{index}] is a {type(record).__name__}; each instance must be a "
                    "dict of feature values"
                )
            out.append(dict(record))
        return out
    raise ModelpilotError(
        f"cannot send a {type(data).__name__} as instances; pass a dict, a list of dicts, "
        "a dict of columns or a pandas DataFrame"
    )


def feedback_items(
    prediction_id: str | Sequence[str] | Mapping[str, Any] | Any,
    label: Any = None,
    *,
    kind: str = "label",
    replace: bool = False,
) -> list[dict[str, Any]]:
    """Feedback items from one id and label, two equally long sequences (lists, NumPy arrays,
    pandas Series), or a mapping of id to label. ``replace`` marks them as corrections.

    Examples
    --------
    >>> feedback_items("p1", 3.5)
    [{'prediction_id': 'p1', 'label': 3.5, 'kind': 'label'}]
    >>> [i["label"] for i in feedback_items(["p1", "p2"], [0, 1])]
    [0, 1]
    >>> [i["prediction_id"] for i in feedback_items({"p1": "spam", "p2": "ham"})]
    ['p1', 'p2']
    """
    if isinstance(prediction_id, str):
        pairs: list[tuple[Any, Any]] = [(prediction_id, label)]
    elif isinstance(prediction_id, Mapping):
        pairs = list(prediction_id.items())
    else:
        ids, labels = list(prediction_id), list(label) if _is_column(label) else None
        if labels is None or len(labels) != len(ids):
            raise ModelpilotError(
                f"feedback for {len(ids)} prediction ids needs as many labels, got "
                + (f"{len(labels)}" if labels is not None else f"a {type(label).__name__}")
            )
        pairs = list(zip(ids, labels, strict=True))
    extra = {"replace": True} if replace else {}
    return [
        {"prediction_id": str(pid), "label": value, "kind": kind, **extra} for pid, value in pairs
    ]


class Client:
    """Talks to ``modelpilot serve`` over HTTP; keyword options, one connection pool.

    ``url`` defaults to ``$MODELPILOT_URL``, then http://127.0.0.1:8000; ``token`` to
    ``$MODELPILOT_TOKEN``.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        token: str | None = None,
        timeout: float = 30.0,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        token = token or env.get("MODELPILOT_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = (url or env.get("MODELPILOT_URL") or DEFAULT_URL).rstrip("/")
        self.timeout = timeout
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, *, body: Any = None) -> httpx.Response:
        content = None
        headers = {}
        if body is not None:
            # orjson writes NumPy scalars and arrays, and NaN as null (a missing value).
            content = orjson.dumps(body, default=_plain, option=orjson.OPT_SERIALIZE_NUMPY)
            headers["Content-Type"] = "application/json"
        try:
            return self._http.request(method, path, content=content, headers=headers)
        except httpx.TimeoutException:
            raise ServerUnreachableError(self.url, timeout_s=self.timeout) from None
        except httpx.TransportError:  # refused, reset, a name that does not resolve
            raise ServerUnreachableError(self.url) from None

    def _check(self, response: httpx.Response) -> Any:
        try:
            payload = response.json()
        except ValueError:
            payload = {"error": "bad_response", "message": response.text[:200]}
        if response.status_code >= 400:
            raise ClientError(response.status_code, payload)
        return payload

    def predict(
        self, deployment: str, instances: Any, *, key: str | None = None
    ) -> list[dict[str, Any]]:
        """One prediction per instance: ``id``, ``prediction``, ``version`` and, for
        classifiers, ``probabilities`` and ``confidence``.

        ``instances``: a dict (one record), a list of dicts, a dict of columns or a pandas
        DataFrame (see :func:`instances_of`).
        """
        body: dict[str, Any] = {"instances": instances_of(instances)}
        if key is not None:
            body["key"] = key
        response = self._request("POST", f"/v1/deployments/{deployment}/predict", body=body)
        payload = self._check(response)
        predictions: list[dict[str, Any]] = payload["predictions"]
        for item in predictions:
            item.setdefault("version", payload["version"])
        return predictions

    def feedback(
        self,
        prediction_id: str | Sequence[str] | Mapping[str, Any] | Any,
        label: Any = None,
        *,
        kind: str = "label",
        replace: bool = False,
    ) -> dict[str, Any]:
        """Send true labels: one (``feedback(id, label)``), or many at once (two sequences,
        or a mapping of id to label). ``replace`` corrects the labels they have (the old ones
        stay as history). The result counts ``accepted`` and ``rejected`` and lists each
        item's outcome, with its error."""
        return self.feedback_many(feedback_items(prediction_id, label, kind=kind, replace=replace))

    def feedback_many(self, items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Send feedback items (``prediction_id``, ``label``, ``kind``); per-item results."""
        response = self._request("POST", "/v1/feedback", body={"items": [dict(i) for i in items]})
        if response.status_code in (207, 422):
            try:
                payload = response.json()
            except ValueError:
                payload = None
            if isinstance(payload, dict) and "results" in payload:
                return payload
        checked: dict[str, Any] = self._check(response)
        return checked

    def ready(self) -> bool:
        return self._request("GET", "/readyz").status_code == 200

    def deployments(self) -> list[dict[str, Any]]:
        payload = self._check(self._request("GET", "/v1/deployments"))
        result: list[dict[str, Any]] = payload["deployments"]
        return result

    def deploy(
        self,
        deployment: str,
        version: int,
        *,
        strategy: str = "canary",
        force: bool = False,
        reason: str = "",
    ) -> dict[str, Any]:
        """Admin: start a rollout (or a direct replacement with ``force``)."""
        return self.admin(
            deployment, "deploy", version=version, strategy=strategy, force=force, reason=reason
        )

    def retrain(self, *, reason: str = "api", force: bool = False) -> dict[str, Any]:
        """Admin: start a retraining run on the server (``POST /v1/retrain``); the run as it
        starts (``status: running``), or a 409 saying why the policy refused it."""
        body = {"reason": reason, "force": force}
        result: dict[str, Any] = self._check(self._request("POST", "/v1/retrain", body=body))
        return result

    def admin(self, deployment: str, action: str, **body: Any) -> dict[str, Any]:
        """Admin actions: deploy, rollback, promote, pause, resume, abort."""
        path = f"/v1/deployments/{deployment}/{action}"
        result: dict[str, Any] = self._check(self._request("POST", path, body=body))
        return result

    def status(self, deployment: str) -> dict[str, Any]:
        """What serves now (version, traffic split) and the rollout in progress, if any."""
        path = f"/v1/deployments/{deployment}/status"
        result: dict[str, Any] = self._check(self._request("GET", path))
        return result

    def alerts(self) -> dict[str, list[dict[str, Any]]]:
        """``{"active": [...], "recent": [...]}``: pending and firing alerts, and the latest
        resolved ones, each with its rule, deployment, value and times."""
        result: dict[str, list[dict[str, Any]]] = self._check(self._request("GET", "/v1/alerts"))
        return result

    def reload(self, deployment: str) -> dict[str, Any]:
        path = f"/v1/deployments/{deployment}/reload"
        result: dict[str, Any] = self._check(self._request("POST", path))
        return result
