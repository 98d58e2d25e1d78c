"""/api/v1/blogs: create (missing tags are created), list (by author_id and tag), get,
replace, patch, delete."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, url_for

from ...auth import require_role
from ...openapi import describe
from ...web import json_object, query_args
from .. import load_service
from ..schemas import BlogIn, BlogOut, BlogPatch, BlogQuery

bp = Blueprint("blogs", __name__, url_prefix="/blogs")


@bp.post("")
@require_role("operator")
@describe(
    "Create a blog",
    description="Tags named in it that do not exist yet are created.",
    body=BlogIn,
    response=BlogOut,
    status=201,
    errors=(409, 422),
)
def create_blog() -> tuple[Response, int, dict[str, str]]:
    blog = load_service().create_blog(body=json_object())
    return jsonify(blog.to_dict()), 201, {"Location": url_for(".get_blog", blog_id=blog.id)}


@bp.get("")
@describe("List blogs", query=BlogQuery, response=list[BlogOut], paged=True)
def list_blogs() -> tuple[Response, int, dict[str, str]]:
    query = query_args(BlogQuery)
    page = load_service().list_blogs(
        author_id=query.author_id, tag=query.tag, limit=query.limit, offset=query.offset
    )
    return jsonify([blog.to_dict() for blog in page.items]), 200, {"X-Total-Count": str(page.total)}


@bp.get("/<int:blog_id>")
@describe("Get a blog", response=BlogOut)
def get_blog(blog_id: int) -> Response:
    return jsonify(load_service().get_blog(blog_id=blog_id).to_dict())


@bp.put("/<int:blog_id>")
@require_role("operator")
@describe("Replace a blog", body=BlogIn, response=BlogOut, errors=(409, 422))
def replace_blog(blog_id: int) -> Response:
    blog = load_service().update_blog(blog_id=blog_id, body=json_object(), partial=False)
    return jsonify(blog.to_dict())


@bp.patch("/<int:blog_id>")
@require_role("operator")
@describe(
    "Change a blog",
    description="The body is merged into the blog, then validated as a whole blog.",
    body=BlogPatch,
    response=BlogOut,
    errors=(409, 422),
)
def patch_blog(blog_id: int) -> Response:
    blog = load_service().update_blog(blog_id=blog_id, body=json_object(), partial=True)
    return jsonify(blog.to_dict())


@bp.delete("/<int:blog_id>")
@require_role("operator")
@describe("Delete a blog", description="Its tags stay.", status=204)
def delete_blog(blog_id: int) -> Response:
    load_service().delete_blog(blog_id=blog_id)
    return Response(status=204)
