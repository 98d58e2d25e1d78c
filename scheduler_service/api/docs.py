"""API documentation: the OpenAPI document at /openapi.json and Swagger UI at /docs.

Swagger UI comes from the ``swagger-ui-bundle`` package, served by this app: no CDN, so the
page works on a machine without Internet access. Both need authentication, as every route
but the health probes does; a browser asks for the password once and sends it with the assets.
"""

from __future__ import annotations

from html import escape
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, send_from_directory, url_for
from swagger_ui_bundle import swagger_ui_path

from ..errors import NotFound
from ..openapi import build_document, describe

EXTENSION_KEY = "scheduler_service.openapi"
# The files /docs loads; nothing else of the bundle is served.
ASSETS = frozenset(
    {
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
        "favicon-32x32.png",
        "favicon-16x16.png",
    }
)
_ASSET_TYPES = ("text/css", "text/javascript", "application/javascript", "image/png")

bp = Blueprint("docs", __name__)

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{title}</title>
  <link rel="stylesheet" href="{css}">
  <link rel="icon" type="image/png" href="{icon}">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{bundle}"></script>
  <script src="{preset}"></script>
  <script>
    window.ui = SwaggerUIBundle({{
      url: "{spec}",
      dom_id: "#swagger-ui",
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      layout: "StandaloneLayout",
      withCredentials: true
    }});
  </script>
</body>
</html>
"""


def openapi_document() -> dict[str, Any]:
    """Return the current app's OpenAPI document, built once (routes do not change)."""
    document = current_app.extensions.get(EXTENSION_KEY)
    if document is None:
        document = current_app.extensions[EXTENSION_KEY] = build_document(current_app)
    return document


@bp.get("/openapi.json")
@describe("This OpenAPI document", response={"type": "object"})
def openapi_json() -> Response:
    return jsonify(openapi_document())


@bp.get("/docs")
@describe("Swagger UI for this API", response={"type": "string"}, media_type="text/html")
def swagger_ui() -> Response:
    asset = "docs.swagger_ui_asset"
    page = _PAGE.format(
        title=escape(openapi_document()["info"]["title"]),
        css=url_for(asset, filename="swagger-ui.css"),
        icon=url_for(asset, filename="favicon-32x32.png"),
        bundle=url_for(asset, filename="swagger-ui-bundle.js"),
        preset=url_for(asset, filename="swagger-ui-standalone-preset.js"),
        spec=url_for("docs.openapi_json"),
    )
    return Response(page, mimetype="text/html")


@bp.get("/docs/<path:filename>")
@describe(
    "A file of the Swagger UI page",
    response={"type": "string", "format": "binary"},
    media_type=_ASSET_TYPES,
)
def swagger_ui_asset(filename: str) -> Response:
    if filename not in ASSETS:
        raise NotFound(f"no file {filename!r} in the API documentation")
    return send_from_directory(swagger_ui_path, filename, max_age=3600)
