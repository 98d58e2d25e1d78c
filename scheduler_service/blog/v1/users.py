"""/api/v1/users: create, list (by name), get, replace, patch, delete (?cascade=true)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, url_for

from ...auth import require_role
from ...openapi import describe
from ...web import json_object, query_args
from .. import load_service
from ..schemas import DeleteUserQuery, UserIn, UserOut, UserPatch, UserQuery

bp = Blueprint("users", __name__, url_prefix="/users")


@bp.post("")
@require_role("operator")
@describe("Create a user", body=UserIn, response=UserOut, status=201, errors=(409,))
def create_user() -> tuple[Response, int, dict[str, str]]:
    user = load_service().create_user(body=json_object())
    return jsonify(user.to_dict()), 201, {"Location": url_for(".get_user", user_id=user.id)}


@bp.get("")
@describe("List users", query=UserQuery, response=list[UserOut], paged=True)
def list_users() -> tuple[Response, int, dict[str, str]]:
    query = query_args(UserQuery)
    page = load_service().list_users(name=query.name, limit=query.limit, offset=query.offset)
    return jsonify([user.to_dict() for user in page.items]), 200, {"X-Total-Count": str(page.total)}


@bp.get("/<int:user_id>")
@describe("Get a user", response=UserOut)
def get_user(user_id: int) -> Response:
    return jsonify(load_service().get_user(user_id=user_id).to_dict())


@bp.put("/<int:user_id>")
@require_role("operator")
@describe("Replace a user", body=UserIn, response=UserOut, errors=(409,))
def replace_user(user_id: int) -> Response:
    user = load_service().update_user(user_id=user_id, body=json_object(), partial=False)
    return jsonify(user.to_dict())


@bp.patch("/<int:user_id>")
@require_role("operator")
@describe(
    "Change a user",
    description="The body is merged into the user, then validated as a whole user.",
    body=UserPatch,
    response=UserOut,
    errors=(409,),
)
def patch_user(user_id: int) -> Response:
    user = load_service().update_user(user_id=user_id, body=json_object(), partial=True)
    return jsonify(user.to_dict())


@bp.delete("/<int:user_id>")
@require_role("operator")
@describe("Delete a user", query=DeleteUserQuery, status=204, errors=(409,))
def delete_user(user_id: int) -> Response:
    load_service().delete_user(user_id=user_id, cascade=query_args(DeleteUserQuery).cascade)
    return Response(status=204)
