"""/api/v1/tags: create, list, get, replace, patch, delete (which takes the tag off its blogs)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, url_for

from ...auth import require_role
from ...openapi import describe
from ...web import json_object, query_args
from .. import load_service
from ..schemas import PageQuery, TagIn, TagOut, TagPatch

bp = Blueprint("tags", __name__, url_prefix="/tags")


@bp.post("")
@require_role("operator")
@describe("Create a tag", body=TagIn, response=TagOut, status=201, errors=(409,))
def create_tag() -> tuple[Response, int, dict[str, str]]:
    tag = load_service().create_tag(body=json_object())
    return jsonify(tag.to_dict()), 201, {"Location": url_for(".get_tag", tag_id=tag.id)}


@bp.get("")
@describe("List tags", query=PageQuery, response=list[TagOut], paged=True)
def list_tags() -> tuple[Response, int, dict[str, str]]:
    query = query_args(PageQuery)
    page = load_service().list_tags(limit=query.limit, offset=query.offset)
    return jsonify([tag.to_dict() for tag in page.items]), 200, {"X-Total-Count": str(page.total)}


@bp.get("/<int:tag_id>")
@describe("Get a tag", response=TagOut)
def get_tag(tag_id: int) -> Response:
    return jsonify(load_service().get_tag(tag_id=tag_id).to_dict())


@bp.put("/<int:tag_id>")
@require_role("operator")
@describe("Rename a tag", body=TagIn, response=TagOut, errors=(409,))
def replace_tag(tag_id: int) -> Response:
    tag = load_service().update_tag(tag_id=tag_id, body=json_object(), partial=False)
    return jsonify(tag.to_dict())


@bp.patch("/<int:tag_id>")
@require_role("operator")
@describe("Rename a tag (merge)", body=TagPatch, response=TagOut, errors=(409,))
def patch_tag(tag_id: int) -> Response:
    tag = load_service().update_tag(tag_id=tag_id, body=json_object(), partial=True)
    return jsonify(tag.to_dict())


@bp.delete("/<int:tag_id>")
@require_role("operator")
@describe("Delete a tag", description="Takes the tag off every blog that has it.", status=204)
def delete_tag(tag_id: int) -> Response:
    load_service().delete_tag(tag_id=tag_id)
    return Response(status=204)
