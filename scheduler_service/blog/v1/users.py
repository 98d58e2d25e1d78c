"""/api/v1/users: create, list (by name), get, replace, patch, delete (?cascade=true)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, url_for

from ...api.request import bool_arg, json_object
from ...auth import require_role
from .. import service
from ..schemas import name_arg, page_args

bp = Blueprint("users", __name__, url_prefix="/users")


@bp.post("")
@require_role("operator")
def create_user() -> tuple[Response, int, dict[str, str]]:
    user = service.create_user(body=json_object())
    return jsonify(user.to_dict()), 201, {"Location": url_for(".get_user", user_id=user.id)}


@bp.get("")
def list_users() -> tuple[Response, int, dict[str, str]]:
    page = service.list_users(name=name_arg("name"), **page_args())
    return jsonify([user.to_dict() for user in page.items]), 200, {"X-Total-Count": str(page.total)}


@bp.get("/<int:user_id>")
def get_user(user_id: int) -> Response:
    return jsonify(service.get_user(user_id=user_id).to_dict())


@bp.put("/<int:user_id>")
@require_role("operator")
def replace_user(user_id: int) -> Response:
    user = service.update_user(user_id=user_id, body=json_object(), partial=False)
    return jsonify(user.to_dict())


@bp.patch("/<int:user_id>")
@require_role("operator")
def patch_user(user_id: int) -> Response:
    user = service.update_user(user_id=user_id, body=json_object(), partial=True)
    return jsonify(user.to_dict())


@bp.delete("/<int:user_id>")
@require_role("operator")
def delete_user(user_id: int) -> Response:
    service.delete_user(user_id=user_id, cascade=bool_arg("cascade") or False)
    return Response(status=204)
