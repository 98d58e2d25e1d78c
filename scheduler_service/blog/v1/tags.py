"""/api/v1/tags: create, list, get, replace, patch, delete (which takes the tag off its blogs)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, url_for

from ...api.request import json_object
from ...auth import require_role
from .. import service
from ..schemas import page_args

bp = Blueprint("tags", __name__, url_prefix="/tags")


@bp.post("")
@require_role("operator")
def create_tag() -> tuple[Response, int, dict[str, str]]:
    tag = service.create_tag(body=json_object())
    return jsonify(tag.to_dict()), 201, {"Location": url_for(".get_tag", tag_id=tag.id)}


@bp.get("")
def list_tags() -> tuple[Response, int, dict[str, str]]:
    page = service.list_tags(**page_args())
    return jsonify([tag.to_dict() for tag in page.items]), 200, {"X-Total-Count": str(page.total)}


@bp.get("/<int:tag_id>")
def get_tag(tag_id: int) -> Response:
    return jsonify(service.get_tag(tag_id=tag_id).to_dict())


@bp.put("/<int:tag_id>")
@require_role("operator")
def replace_tag(tag_id: int) -> Response:
    return jsonify(service.update_tag(tag_id=tag_id, body=json_object(), partial=False).to_dict())


@bp.patch("/<int:tag_id>")
@require_role("operator")
def patch_tag(tag_id: int) -> Response:
    return jsonify(service.update_tag(tag_id=tag_id, body=json_object(), partial=True).to_dict())


@bp.delete("/<int:tag_id>")
@require_role("operator")
def delete_tag(tag_id: int) -> Response:
    service.delete_tag(tag_id=tag_id)
    return Response(status=204)
