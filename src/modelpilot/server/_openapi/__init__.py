"""The OpenAPI 3.1 document of a running server: every endpoint, each deployment's input schema.

``GET /openapi.json`` answers it. Every route of ``_app.py`` (the Starlette routes, and the
prediction paths its raw ASGI function answers first) has an operation here, and
``tests/serving/test_openapi_routes.py`` fails when one is missing. The role a token needs is
the scope of the operation's ``bearer`` requirement (OpenAPI 3.1 allows role names there):
``predict`` (an admin token works too) or ``admin``; no requirement means no token. Every
error answers with the one ``Error`` schema, the shape of ``ModelpilotError.to_dict``.
"""

from modelpilot.server._openapi._document import openapi_document

__all__ = ["openapi_document"]
