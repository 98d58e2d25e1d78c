"""Version 1 of the blog API: one blueprint under /api/v1, one module per resource.

A later version is a sibling package (``v2``) with its own ``bp``, reusing the service layer.
"""

from __future__ import annotations

from flask import Blueprint

from . import blogs, tags, users

bp = Blueprint("api_v1", __name__, url_prefix="/api/v1")
for _resource in (users, blogs, tags):
    bp.register_blueprint(_resource.bp)
