"""/api/v1/blogs: create (missing tags are created), list (by author_id and tag), get,
replace, patch, delete."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, url_for

from ...api.request import int_arg, json_object
from ...auth import require_role
from .. import service
from ..models import MAX_ID
from ..schemas import name_arg, page_args

bp = Blueprint("blogs", __name__, url_prefix="/blogs")


@bp.post("")
@require_role("operator")
def create_blog() -> tuple[Response, int, dict[str, str]]:
    blog = service.create_blog(body=json_object())
    return jsonify(blog.to_dict()), 201, {"Location": url_for(".get_blog", blog_id=blog.id)}


@bp.get("")
def list_blogs() -> tuple[Response, int, dict[str, str]]:
    page = service.list_blogs(
        author_id=int_arg("author_id", default=None, minimum=1, maximum=MAX_ID),
        tag=name_arg("tag"),
        **page_args(),
    )
    return jsonify([blog.to_dict() for blog in page.items]), 200, {"X-Total-Count": str(page.total)}


@bp.get("/<int:blog_id>")
def get_blog(blog_id: int) -> Response:
    return jsonify(service.get_blog(blog_id=blog_id).to_dict())


@bp.put("/<int:blog_id>")
@require_role("operator")
def replace_blog(blog_id: int) -> Response:
    blog = service.update_blog(blog_id=blog_id, body=json_object(), partial=False)
    return jsonify(blog.to_dict())


@bp.patch("/<int:blog_id>")
@require_role("operator")
def patch_blog(blog_id: int) -> Response:
    blog = service.update_blog(blog_id=blog_id, body=json_object(), partial=True)
    return jsonify(blog.to_dict())


@bp.delete("/<int:blog_id>")
@require_role("operator")
def delete_blog(blog_id: int) -> Response:
    service.delete_blog(blog_id=blog_id)
    return Response(status=204)
