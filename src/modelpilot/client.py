"""A Python client for a running modelpilot server.

Examples
--------
>>> client = Client("http://127.0.0.1:8000", token="...")  # doctest: +SKIP
>>> client.predict("house-prices", {"size_sqft": 1800, ...})[0]["prediction"]  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from modelpilot.errors import ModelpilotError

__all__ = ["Client", "ClientError"]


class ClientError(ModelpilotError):
    """The server answered with an error; ``status``, ``kind`` and ``problems`` say which."""

    def __init__(self, status: int, payload: Mapping[str, Any]) -> None:
        self.status = status
        self.http_status = status
        self.kind = str(payload.get("error", "error"))
        self.problems = list(payload.get("problems", []))
        self.payload = dict(payload)
        super().__init__(f"HTTP {status}: {payload.get('message', payload.get('error', ''))}")


class Client:
    """Talks to ``modelpilot serve`` over HTTP; keyword options, one connection pool."""

    def __init__(self, url: str, *, token: str | None = None, timeout: float = 30.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _check(self, response: httpx.Response) -> Any:
        try:
            payload = response.json()
        except ValueError:
            payload = {"error": "bad_response", "message": response.text[:200]}
        if response.status_code >= 400:
            raise ClientError(response.status_code, payload)
        return payload

    def predict(
        self,
        deployment: str,
        instances: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        *,
        key: str | None = None,
    ) -> list[dict[str, Any]]:
        """One prediction per instance: ``id``, ``prediction`` and, for classifiers,
        ``probabilities`` and ``confidence``."""
        body: dict[str, Any] = {
            "instances": [dict(instances)]
            if isinstance(instances, Mapping)
            else [dict(i) for i in instances]
        }
        if key is not None:
            body["key"] = key
        payload = self._check(self._http.post(f"/v1/deployments/{deployment}/predict", json=body))
        predictions: list[dict[str, Any]] = payload["predictions"]
        for item in predictions:
            item.setdefault("version", payload["version"])
        return predictions

    def feedback(
        self, prediction_id: str, label: Any, *, kind: str = "label", replace: bool = False
    ) -> dict[str, Any]:
        """Send a prediction's true label; ``replace`` corrects the label it has (the old one
        is kept as history)."""
        item = {"prediction_id": prediction_id, "label": label, "kind": kind}
        return self.feedback_many([{**item, "replace": True} if replace else item])

    def feedback_many(self, items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Send labels; the result lists each item as accepted or with its error."""
        response = self._http.post("/v1/feedback", json={"items": [dict(i) for i in items]})
        if response.status_code in (207, 422) and "results" in response.json():
            result: dict[str, Any] = response.json()
            return result
        checked: dict[str, Any] = self._check(response)
        return checked

    def ready(self) -> bool:
        return self._http.get("/readyz").status_code == 200

    def deployments(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._check(self._http.get("/v1/deployments"))["deployments"]
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

    def admin(self, deployment: str, action: str, **body: Any) -> dict[str, Any]:
        """Admin actions: deploy, rollback, promote, pause, resume, abort."""
        result: dict[str, Any] = self._check(
            self._http.post(f"/v1/deployments/{deployment}/{action}", json=body)
        )
        return result

    def status(self, deployment: str) -> dict[str, Any]:
        result: dict[str, Any] = self._check(self._http.get(f"/v1/deployments/{deployment}/status"))
        return result

    def reload(self, deployment: str) -> dict[str, Any]:
        result: dict[str, Any] = self._check(
            self._http.post(f"/v1/deployments/{deployment}/reload")
        )
        return result
