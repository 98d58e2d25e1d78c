"""The companion blueprint (SPEC §7): every route and error of /api/v1, on SQLite and
PostgreSQL; its tables from migration 0001_blog; a smoke run on MariaDB and over HTTP."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import flask_migrate
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from flask.testing import FlaskClient

from scheduler_service import upgrade_database
from scheduler_service.blog import service
from scheduler_service.blog.models import Tag
from scheduler_service.extensions import db
from tests.support.api import assert_error
from tests.support.credentials import ADMIN, OPERATOR, VIEWER
from tests.support.databases import (
    ancestors,
    applied_revisions,
    dispose,
    fresh_database,
    table_names,
)
from tests.support.server import ADMIN_PASSWORD, Server

V1 = "/api/v1"
BLOG_TABLES = {"blog_users", "blog_posts", "blog_tags", "blog_post_tags"}


def post(client: FlaskClient, path: str, body: Any, headers: dict[str, str] = ADMIN) -> Any:
    """POST ``body`` to /api/v1/``path``; check the 201 and Location; return the new item."""
    response = client.post(f"/api/v1/{path}", json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    item = response.get_json()
    assert response.headers["Location"].endswith(f"/api/v1/{path}/{item['id']}")
    return item


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """Settings for the service database: SQLite in the instance folder, or a fresh
    PostgreSQL database."""
    if request.param == "sqlite":
        yield {}
        return
    with fresh_database("TEST_POSTGRES_URL") as url:
        yield {"SCHEDULER_DATABASE_URL": url}


@pytest.fixture
def blog_app(database: dict[str, Any], make_app: Callable[..., Flask]) -> Iterator[Flask]:
    app = make_app(**database)
    yield app
    dispose(app)


@pytest.fixture
def api(blog_app: Flask) -> FlaskClient:
    return blog_app.test_client()


def get(client: FlaskClient, path: str) -> Any:
    response = client.get(f"{V1}/{path}", headers=VIEWER)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def listing(client: FlaskClient, path: str) -> tuple[list[dict[str, Any]], int]:
    """GET a list: its items, and the X-Total-Count header."""
    response = client.get(f"{V1}/{path}", headers=VIEWER)
    assert response.status_code == 200, response.get_json()
    assert isinstance(response.get_json(), list)
    return response.get_json(), int(response.headers["X-Total-Count"])


def moment(text: str) -> datetime:
    """Parse a timestamp of the API: ISO 8601, in UTC, with microseconds."""
    assert len(text) == len("2025-01-31T12:00:00.000000+00:00"), text
    value = datetime.fromisoformat(text)
    assert value.utcoffset() == timedelta(0), text
    return value


def blog_body(author_id: int, **fields: Any) -> dict[str, Any]:
    return {"title": "Cron tips", "content": "Use UTC.", "author_id": author_id, **fields}


def everything(client: FlaskClient) -> dict[str, Any]:
    """Return every user, blog and tag: what a refused request must leave alone."""
    return {path: listing(client, f"{path}?limit=100") for path in ("users", "blogs", "tags")}


# -- users ------------------------------------------------------------------------------------


def test_create_get_and_list_users(api: FlaskClient) -> None:
    linda = post(api, "users", {"name": "  linda ", "age": 30})
    assert linda == {"id": linda["id"], "name": "linda", "age": 30}
    assert get(api, f"users/{linda['id']}") == linda
    anon = post(api, "users", {"name": "Zoë 🐍"})
    assert anon["age"] is None and anon["name"] == "Zoë 🐍"
    assert listing(api, "users") == ([linda, anon], 2)


def test_users_page_and_filter_by_name(api: FlaskClient) -> None:
    users = [post(api, "users", {"name": f"u{i}", "age": i}) for i in range(5)]
    assert listing(api, "users?limit=2&offset=1") == (users[1:3], 5)
    assert listing(api, "users?offset=4") == (users[4:], 5)
    assert listing(api, "users?offset=9") == ([], 5)
    assert listing(api, "users?name=u3") == ([users[3]], 1)
    assert listing(api, "users?name=%20u3%20") == ([users[3]], 1)
    assert listing(api, "users?name=nobody") == ([], 0)
    for bad in ("%00", "", "%20", "x" * 81):
        assert_error(api.get(f"{V1}/users?name={bad}", headers=ADMIN), 400, "name")


def test_replace_user_sets_every_field(api: FlaskClient) -> None:
    user = post(api, "users", {"name": "linda", "age": 30})
    response = api.put(f"{V1}/users/{user['id']}", json={"name": "Linda B"}, headers=ADMIN)
    assert response.status_code == 200
    assert response.get_json() == {"id": user["id"], "name": "Linda B", "age": None}
    assert get(api, f"users/{user['id']}") == response.get_json()
    before = everything(api)
    assert_error(api.put(f"{V1}/users/{user['id']}", json={"age": 3}, headers=ADMIN), 400, "name")
    assert everything(api) == before


def test_patch_user_changes_only_what_it_names(api: FlaskClient) -> None:
    user = post(api, "users", {"name": "linda", "age": 30})
    response = api.patch(f"{V1}/users/{user['id']}", json={"age": 31}, headers=ADMIN)
    assert response.status_code == 200
    assert response.get_json() == {**user, "age": 31}
    response = api.patch(f"{V1}/users/{user['id']}", json={"age": None}, headers=ADMIN)
    assert response.get_json() == {**user, "age": None}
    response = api.patch(f"{V1}/users/{user['id']}", json={}, headers=ADMIN)
    assert response.status_code == 200 and response.get_json() == {**user, "age": None}


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"name": None}, "name"),
        ({"name": "new", "age": "31"}, "age"),  # applies fully or not at all
        ({"name": "new", "nick": "x"}, "nick"),
        ({"age": 151}, "age"),
        ({"age": -1}, "age"),
        ({"age": 30.5}, "age"),
        ({"name": "lin\x00da"}, "name"),
        ({"name": "lin\nda"}, "name"),
        ({"name": "x" * 81}, "name"),
        ({"name": "  "}, "name"),
    ],
)
def test_refused_patch_changes_nothing(api: FlaskClient, patch: dict, field: str) -> None:
    user = post(api, "users", {"name": "linda", "age": 30})
    assert_error(api.patch(f"{V1}/users/{user['id']}", json=patch, headers=ADMIN), 400, field)
    assert get(api, f"users/{user['id']}") == user


def test_duplicate_user_name_is_409_and_changes_nothing(api: FlaskClient) -> None:
    linda = post(api, "users", {"name": "linda", "age": 30})
    other = post(api, "users", {"name": "other", "age": 40})
    before = everything(api)
    body = assert_error(api.post(f"{V1}/users", json={"name": " linda "}, headers=ADMIN), 409)
    assert body["errors"] == {"name": "already taken"} and "linda" in body["error_message"]
    url = f"{V1}/users/{other['id']}"
    assert_error(api.put(url, json={"name": "linda", "age": 1}, headers=ADMIN), 409, "name")
    assert_error(api.patch(url, json={"name": "linda"}, headers=ADMIN), 409, "name")
    assert everything(api) == before
    # Keeping one's own name is no conflict.
    same = api.put(f"{V1}/users/{linda['id']}", json={"name": "linda", "age": 31}, headers=ADMIN)
    assert same.status_code == 200 and same.get_json()["age"] == 31


def test_delete_user(api: FlaskClient) -> None:
    user = post(api, "users", {"name": "linda"})
    response = api.delete(f"{V1}/users/{user['id']}", headers=ADMIN)
    assert response.status_code == 204 and response.data == b""
    assert_error(api.get(f"{V1}/users/{user['id']}", headers=ADMIN), 404)
    assert_error(api.delete(f"{V1}/users/{user['id']}", headers=ADMIN), 404)
    assert listing(api, "users") == ([], 0)


def test_deleting_a_user_with_blogs_needs_cascade(api: FlaskClient) -> None:
    author = post(api, "users", {"name": "linda"})
    keeper = post(api, "users", {"name": "keeper"})
    blog = post(api, "blogs", blog_body(author["id"], tags=["ops", "cron"]))
    kept = post(api, "blogs", blog_body(keeper["id"], tags=["ops"]))
    before = everything(api)
    url = f"{V1}/users/{author['id']}"
    body = assert_error(api.delete(url, headers=ADMIN), 409)
    assert "cascade=true" in body["error_message"]
    assert_error(api.delete(f"{url}?cascade=false", headers=ADMIN), 409)
    assert_error(api.delete(f"{url}?cascade=maybe", headers=ADMIN), 400, "cascade")
    assert everything(api) == before
    assert api.delete(f"{url}?cascade=true", headers=ADMIN).status_code == 204
    assert_error(api.get(url, headers=ADMIN), 404)
    assert_error(api.get(f"{V1}/blogs/{blog['id']}", headers=ADMIN), 404)
    assert listing(api, "blogs") == ([kept], 1)
    assert {tag["name"] for tag in listing(api, "tags")[0]} == {"ops", "cron"}


def test_a_race_lost_to_the_unique_constraint_is_409(
    api: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A concurrent request that takes the name between check and commit: the database
    refuses, and the answer is a 409 with nothing changed, never a 500."""
    post(api, "users", {"name": "linda"})
    author = post(api, "users", {"name": "other"})
    post(api, "tags", {"name": "ops"})
    before = everything(api)
    monkeypatch.setattr(service, "_ensure_free", lambda *args, **kwargs: None)
    assert_error(api.post(f"{V1}/users", json={"name": "linda"}, headers=ADMIN), 409)
    rename = api.patch(f"{V1}/users/{author['id']}", json={"name": "linda"}, headers=ADMIN)
    assert "unchanged" in assert_error(rename, 409)["error_message"]
    assert_error(api.post(f"{V1}/tags", json={"name": "ops"}, headers=ADMIN), 409)
    monkeypatch.setattr(service, "_tags", lambda names: [Tag(name=name) for name in names])
    body = blog_body(author["id"], tags=["ops"])
    assert_error(api.post(f"{V1}/blogs", json=body, headers=ADMIN), 409)
    assert everything(api) == before


# -- tags -------------------------------------------------------------------------------------


def test_tag_crud(api: FlaskClient) -> None:
    tag = post(api, "tags", {"name": " ops "})
    assert tag == {"id": tag["id"], "name": "ops"}
    assert get(api, f"tags/{tag['id']}") == tag
    url = f"{V1}/tags/{tag['id']}"
    response = api.put(url, json={"name": "devops"}, headers=ADMIN)
    assert response.status_code == 200 and response.get_json() == {**tag, "name": "devops"}
    response = api.patch(url, json={"name": "sre"}, headers=ADMIN)
    assert response.status_code == 200 and response.get_json() == {**tag, "name": "sre"}
    assert api.patch(url, json={}, headers=ADMIN).get_json() == {**tag, "name": "sre"}
    assert_error(api.put(url, json={}, headers=ADMIN), 400, "name")
    assert listing(api, "tags") == ([{**tag, "name": "sre"}], 1)
    assert api.delete(url, headers=ADMIN).status_code == 204
    assert_error(api.get(url, headers=ADMIN), 404)
    assert listing(api, "tags") == ([], 0)


def test_duplicate_tag_name_is_409(api: FlaskClient) -> None:
    post(api, "tags", {"name": "ops"})
    cron = post(api, "tags", {"name": "cron"})
    before = everything(api)
    assert_error(api.post(f"{V1}/tags", json={"name": "ops"}, headers=ADMIN), 409, "name")
    url = f"{V1}/tags/{cron['id']}"
    assert_error(api.put(url, json={"name": "ops"}, headers=ADMIN), 409, "name")
    assert_error(api.patch(url, json={"name": "ops"}, headers=ADMIN), 409, "name")
    assert everything(api) == before


def test_deleting_a_tag_takes_it_off_its_blogs(api: FlaskClient) -> None:
    author = post(api, "users", {"name": "linda"})
    blog = post(api, "blogs", blog_body(author["id"], tags=["ops", "cron"]))
    ops = next(tag for tag in listing(api, "tags")[0] if tag["name"] == "ops")
    assert api.delete(f"{V1}/tags/{ops['id']}", headers=ADMIN).status_code == 204
    assert get(api, f"blogs/{blog['id']}")["tags"] == ["cron"]
    assert listing(api, "blogs?tag=ops") == ([], 0)


def test_page_size_defaults_to_20_and_is_capped_at_100(api: FlaskClient) -> None:
    tags = [post(api, "tags", {"name": f"t{i:02}"}) for i in range(21)]
    assert listing(api, "tags") == (tags[:20], 21)
    assert listing(api, "tags?limit=100") == (tags, 21)
    assert listing(api, "tags?limit=5&offset=20") == (tags[20:], 21)
    for query, field in [
        ("limit=101", "limit"),
        ("limit=0", "limit"),
        ("limit=ten", "limit"),
        ("offset=-1", "offset"),
        ("offset=99999999999999999999", "offset"),
    ]:
        for path in ("users", "blogs", "tags"):
            assert_error(api.get(f"{V1}/{path}?{query}", headers=ADMIN), 400, field)


# -- blogs ------------------------------------------------------------------------------------


def test_create_blog_creates_missing_tags(api: FlaskClient) -> None:
    author = post(api, "users", {"name": "linda", "age": 30})
    ops = post(api, "tags", {"name": "ops"})
    started = datetime.now(UTC)
    blog = post(api, "blogs", blog_body(author["id"], tags=["ops", " cron ", "ops"]))
    assert {k: blog[k] for k in ("title", "content", "author_id", "author", "tags")} == {
        "title": "Cron tips",
        "content": "Use UTC.",
        "author_id": author["id"],
        "author": author,
        "tags": ["cron", "ops"],
    }
    assert timedelta(0) <= moment(blog["created_at"]) - started < timedelta(seconds=60)
    assert blog["updated_at"] == blog["created_at"]
    assert get(api, f"blogs/{blog['id']}") == blog
    tags, total = listing(api, "tags")
    assert total == 2 and ops in tags and {t["name"] for t in tags} == {"ops", "cron"}
    bare = post(api, "blogs", blog_body(author["id"]))
    assert bare["tags"] == []


def test_blog_with_a_missing_author_is_422_and_creates_no_tag(api: FlaskClient) -> None:
    author = post(api, "users", {"name": "linda"})
    before = everything(api)
    body = blog_body(author["id"] + 100, tags=["new"])
    assert_error(api.post(f"{V1}/blogs", json=body, headers=ADMIN), 422, "author_id")
    assert everything(api) == before


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"title": None}, "title"),
        ({"title": "   "}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"content": ""}, "content"),
        ({"content": "x" * 100_001}, "content"),
        ({"content": 5}, "content"),
        ({"content": "nul \x00 byte"}, "content"),
        ({"title": "tab\there"}, "title"),
        ({"author_id": "1"}, "author_id"),
        ({"author_id": 0}, "author_id"),
        ({"author_id": 2**31}, "author_id"),
        ({"tags": "ops"}, "tags"),
        ({"tags": ["ops", ""]}, "tags.1"),
        ({"tags": ["x" * 81]}, "tags.0"),
        ({"tags": [f"t{i}" for i in range(51)]}, "tags"),
        ({"tags": [1]}, "tags.0"),
        ({"tags": ["line\nbreak"]}, "tags.0"),
        ({"draft": True}, "draft"),
    ],
)
def test_invalid_blog_is_400(api: FlaskClient, change: dict, field: str) -> None:
    author = post(api, "users", {"name": "linda"})
    blog = post(api, "blogs", blog_body(author["id"], tags=["ops"]))
    before = everything(api)
    body = {**blog_body(author["id"]), **change}
    assert_error(api.post(f"{V1}/blogs", json=body, headers=ADMIN), 400, field)
    url = f"{V1}/blogs/{blog['id']}"
    assert_error(api.put(url, json=body, headers=ADMIN), 400, field)
    assert_error(api.patch(url, json={"title": "changed", **change}, headers=ADMIN), 400, field)
    assert everything(api) == before


def test_long_content_and_unicode(api: FlaskClient) -> None:
    author = post(api, "users", {"name": "Zoë"})
    content = "Ünïcode 🐍\n\t" * 9_000  # 90,000 characters, 4-byte ones, line breaks
    blog = post(api, "blogs", blog_body(author["id"], content=content, tags=["🐍"]))
    assert get(api, f"blogs/{blog['id']}")["content"] == content
    assert listing(api, "blogs?tag=🐍")[1] == 1


def test_list_blogs_by_author_and_tag(api: FlaskClient) -> None:
    linda = post(api, "users", {"name": "linda"})
    bob = post(api, "users", {"name": "bob"})
    a = post(api, "blogs", blog_body(linda["id"], title="a", tags=["ops", "cron"]))
    b = post(api, "blogs", blog_body(linda["id"], title="b", tags=["cron"]))
    c = post(api, "blogs", blog_body(bob["id"], title="c", tags=["ops"]))
    assert listing(api, "blogs") == ([a, b, c], 3)
    assert listing(api, f"blogs?author_id={linda['id']}") == ([a, b], 2)
    assert listing(api, "blogs?tag=ops") == ([a, c], 2)
    assert listing(api, f"blogs?tag=ops&author_id={bob['id']}") == ([c], 1)
    assert listing(api, "blogs?tag=cron&limit=1&offset=1") == ([b], 2)
    assert listing(api, "blogs?tag=none") == ([], 0)
    assert listing(api, f"blogs?author_id={bob['id'] + 100}") == ([], 0)
    for bad in ("abc", "0", str(2**31)):
        assert_error(api.get(f"{V1}/blogs?author_id={bad}", headers=ADMIN), 400, "author_id")
    for bad in ("a%00", "", "x" * 81):
        assert_error(api.get(f"{V1}/blogs?tag={bad}", headers=ADMIN), 400, "tag")


def test_replace_blog(api: FlaskClient) -> None:
    linda = post(api, "users", {"name": "linda"})
    bob = post(api, "users", {"name": "bob"})
    blog = post(api, "blogs", blog_body(linda["id"], tags=["ops", "cron"]))
    url = f"{V1}/blogs/{blog['id']}"
    new = {"title": "New", "content": "Body", "author_id": bob["id"], "tags": ["cron", "sre"]}
    response = api.put(url, json=new, headers=OPERATOR)
    assert response.status_code == 200
    replaced = response.get_json()
    assert {k: replaced[k] for k in new} == {**new, "tags": ["cron", "sre"]}
    assert replaced["author"] == bob and replaced["created_at"] == blog["created_at"]
    assert moment(replaced["updated_at"]) > moment(blog["updated_at"])
    assert get(api, f"blogs/{blog['id']}") == replaced
    # Without tags, a PUT leaves the blog with none.
    untagged = {k: new[k] for k in ("title", "content", "author_id")}
    response = api.put(url, json=untagged, headers=OPERATOR)
    assert response.get_json()["tags"] == []
    before = everything(api)
    missing = {**new, "author_id": bob["id"] + 100}
    assert_error(api.put(url, json=missing, headers=ADMIN), 422, "author_id")
    assert_error(api.put(url, json={"title": "only"}, headers=ADMIN), 400, "content", "author_id")
    assert everything(api) == before


def test_patch_blog(api: FlaskClient) -> None:
    linda = post(api, "users", {"name": "linda"})
    blog = post(api, "blogs", blog_body(linda["id"], tags=["ops"]))
    url = f"{V1}/blogs/{blog['id']}"
    unchanged = api.patch(url, json={}, headers=OPERATOR)
    assert unchanged.status_code == 200 and unchanged.get_json() == blog
    same = api.patch(url, json={"title": blog["title"], "tags": ["ops"]}, headers=OPERATOR)
    assert same.get_json() == blog  # nothing changed: updated_at stays
    response = api.patch(url, json={"title": "Renamed"}, headers=OPERATOR)
    patched = response.get_json()
    assert response.status_code == 200
    assert patched == {**blog, "title": "Renamed", "updated_at": patched["updated_at"]}
    assert moment(patched["updated_at"]) > moment(blog["updated_at"])
    response = api.patch(url, json={"tags": ["cron", "new"]}, headers=OPERATOR)
    assert response.get_json()["tags"] == ["cron", "new"]
    assert response.get_json()["title"] == "Renamed"
    assert api.patch(url, json={"tags": []}, headers=OPERATOR).get_json()["tags"] == []
    before = everything(api)
    missing = {"title": "x", "author_id": linda["id"] + 100}
    assert_error(api.patch(url, json=missing, headers=ADMIN), 422, "author_id")
    assert everything(api) == before


def test_delete_blog_keeps_its_tags_and_author(api: FlaskClient) -> None:
    linda = post(api, "users", {"name": "linda"})
    blog = post(api, "blogs", blog_body(linda["id"], tags=["ops"]))
    url = f"{V1}/blogs/{blog['id']}"
    response = api.delete(url, headers=OPERATOR)
    assert response.status_code == 204 and response.data == b""
    assert_error(api.get(url, headers=ADMIN), 404)
    assert_error(api.delete(url, headers=ADMIN), 404)
    assert listing(api, "blogs") == ([], 0)
    assert [tag["name"] for tag in listing(api, "tags")[0]] == ["ops"]
    # The author has no blog left, so a plain delete works.
    assert api.delete(f"{V1}/users/{linda['id']}", headers=ADMIN).status_code == 204


# -- errors shared by every resource ----------------------------------------------------------

RESOURCES = ("users", "blogs", "tags")
VALID = {
    "users": {"name": "someone"},
    "tags": {"name": "something"},
    "blogs": {"title": "t", "content": "c", "author_id": 1},
}


@pytest.mark.parametrize("path", RESOURCES)
@pytest.mark.parametrize("ident", ["12345", "0", "99999999999999999999", "abc", "-1"])
def test_unknown_item_is_404_everywhere(api: FlaskClient, path: str, ident: str) -> None:
    url = f"{V1}/{path}/{ident}"
    assert_error(api.get(url, headers=ADMIN), 404)
    assert_error(api.put(url, json=VALID[path], headers=ADMIN), 404)
    assert_error(api.patch(url, json={}, headers=ADMIN), 404)
    assert_error(api.delete(url, headers=ADMIN), 404)


def make_item(client: FlaskClient, path: str) -> dict[str, Any]:
    """Create one item of ``path`` (a blog with its author and a tag)."""
    if path == "blogs":
        author = post(client, "users", {"name": "author"})
        return post(client, "blogs", blog_body(author["id"], tags=["ops"]))
    return post(client, path, {"name": "mine"})


@pytest.mark.parametrize("path", RESOURCES)
def test_malformed_bodies_are_400(api: FlaskClient, path: str) -> None:
    item = make_item(api, path)
    before = everything(api)
    as_json = {**ADMIN, "Content-Type": "application/json"}
    for method, url in [
        ("POST", f"{V1}/{path}"),
        ("PUT", f"{V1}/{path}/{item['id']}"),
        ("PATCH", f"{V1}/{path}/{item['id']}"),
    ]:
        for raw in (b"{not json", b"", b"[1, 2]", b"null", b'"text"', b"\xff\xfe"):
            assert_error(api.open(url, method=method, data=raw, headers=as_json), 400)
        unknown = api.open(url, method=method, json={**VALID[path], "extra": 1}, headers=ADMIN)
        assert assert_error(unknown, 400, "extra")["errors"]["extra"] == "unknown field"
        field = "title" if path == "blogs" else "name"
        wrong = api.open(url, method=method, json={**VALID[path], field: 5}, headers=ADMIN)
        assert_error(wrong, 400, field)
    assert everything(api) == before


@pytest.mark.parametrize("path", RESOURCES)
def test_cross_site_bodies_are_403_and_others_read_as_json(api: FlaskClient, path: str) -> None:
    item = make_item(api, path)
    before = everything(api)
    form = api.post(f"{V1}/{path}", data={"name": "x"}, headers=ADMIN)
    assert_error(form, 400)  # read as JSON, whatever the Content-Type: name=x is not JSON
    text = {**ADMIN, "Content-Type": "text/plain", "Sec-Fetch-Site": "cross-site"}
    assert_error(api.put(f"{V1}/{path}/{item['id']}", data='{"name": "x"}', headers=text), 403)
    foreign = {**ADMIN, "Origin": "https://elsewhere.example"}
    assert_error(api.patch(f"{V1}/{path}/{item['id']}", data="{}", headers=foreign), 403)
    assert everything(api) == before


@pytest.mark.parametrize("path", RESOURCES)
def test_wrong_method_is_a_json_405(api: FlaskClient, path: str) -> None:
    body = assert_error(api.delete(f"{V1}/{path}", headers=ADMIN), 405)
    assert body["status"] == "Method Not Allowed"
    response = api.post(f"{V1}/{path}/1", json={}, headers=ADMIN)
    assert_error(response, 405)
    assert "POST" not in response.headers["Allow"] and "PATCH" in response.headers["Allow"]


# -- authentication and roles -----------------------------------------------------------------


@pytest.mark.parametrize("path", RESOURCES)
def test_viewer_reads_and_may_not_write(api: FlaskClient, path: str) -> None:
    item = make_item(api, path)
    assert listing(api, path) == ([item], 1)
    assert get(api, f"{path}/{item['id']}") == item
    before = everything(api)
    url = f"{V1}/{path}/{item['id']}"
    for response in (
        api.post(f"{V1}/{path}", json=VALID[path], headers=VIEWER),
        api.put(url, json=VALID[path], headers=VIEWER),
        api.patch(url, json={}, headers=VIEWER),
        api.delete(url, headers=VIEWER),
    ):
        assert "operator" in assert_error(response, 403)["error_message"]
    assert everything(api) == before


def test_operator_writes_everything(api: FlaskClient) -> None:
    user = post(api, "users", {"name": "linda"}, headers=OPERATOR)
    tag = post(api, "tags", {"name": "ops"}, headers=OPERATOR)
    blog = post(api, "blogs", blog_body(user["id"], tags=["ops"]), headers=OPERATOR)
    for path, item, change in (
        ("users", user, {"age": 3}),
        ("tags", tag, {"name": "sre"}),
        ("blogs", blog, {"title": "x"}),
    ):
        url = f"{V1}/{path}/{item['id']}"
        assert api.patch(url, json=change, headers=OPERATOR).status_code == 200
    assert (
        api.put(f"{V1}/tags/{tag['id']}", json={"name": "o"}, headers=OPERATOR).status_code == 200
    )
    for path, item in (("blogs", blog), ("tags", tag), ("users", user)):
        assert api.delete(f"{V1}/{path}/{item['id']}", headers=OPERATOR).status_code == 204
    assert everything(api) == {path: ([], 0) for path in RESOURCES}


@pytest.mark.parametrize("path", RESOURCES)
def test_anonymous_is_401(api: FlaskClient, path: str) -> None:
    for response in (api.get(f"{V1}/{path}"), api.post(f"{V1}/{path}", json=VALID[path])):
        assert_error(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Basic realm=")
    assert everything(api) == {path: ([], 0) for path in RESOURCES}


# -- schema by migration ----------------------------------------------------------------------


def test_tables_come_from_migration_0001_blog(blog_app: Flask) -> None:
    current, heads = applied_revisions(blog_app)
    assert current == heads
    assert "0001_blog" in ancestors(current)
    assert table_names(blog_app) >= BLOG_TABLES | {"alembic_version"}


def test_no_tables_without_the_migration(
    database: dict[str, Any], make_app: Callable[..., Flask]
) -> None:
    app = make_app(SCHEDULER_DATABASE_MIGRATE=False, **database)
    assert not BLOG_TABLES & table_names(app)  # nothing creates them behind Alembic's back
    upgrade_database(app)
    assert table_names(app) >= BLOG_TABLES
    with app.app_context():
        flask_migrate.downgrade(revision="base")
    assert not BLOG_TABLES & table_names(app)
    dispose(app)


def assert_models_match_migration(app: Flask) -> None:
    """Compare the blog models with the migrated schema, as autogenerate would."""

    def blog_only(obj: Any, name: str | None, type_: str, reflected: bool, other: Any) -> bool:
        table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", "")
        return (table or "").startswith("blog_")

    with app.app_context(), db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_object": blog_only}
        )
        assert compare_metadata(context, db.metadata) == []


def test_models_match_the_migration(blog_app: Flask) -> None:
    assert_models_match_migration(blog_app)


# -- MariaDB and the running service ----------------------------------------------------------


def test_mariadb_smoke(make_app: Callable[..., Flask]) -> None:
    with fresh_database("TEST_MYSQL_URL") as url:
        app = make_app(SCHEDULER_DATABASE_URL=url)
        try:
            current, heads = applied_revisions(app)
            assert current == heads and "0001_blog" in ancestors(current)
            assert_models_match_migration(app)
            client = app.test_client()
            user = post(client, "users", {"name": "Zoë 🐍", "age": 30})
            assert_error(client.post(f"{V1}/users", json={"name": "Zoë 🐍"}, headers=ADMIN), 409)
            post(client, "users", {"name": "zoë 🐍"})  # names are case-sensitive everywhere
            tag = post(client, "tags", {"name": "ops"})
            content = "🐍" * 70_000  # more than a MariaDB TEXT holds
            blog = post(
                client, "blogs", blog_body(user["id"], content=content, tags=["ops", "new"])
            )
            assert blog["tags"] == ["new", "ops"] and get(client, f"blogs/{blog['id']}") == blog
            assert moment(blog["created_at"]) == moment(blog["updated_at"])
            with app.app_context():
                columns = sa.inspect(db.engine).get_columns("blog_posts")
            assert {c["name"]: getattr(c["type"], "fsp", None) for c in columns}["created_at"] == 6
            assert listing(client, "blogs?tag=ops") == ([blog], 1)
            assert_error(client.delete(f"{V1}/users/{user['id']}", headers=ADMIN), 409)
            url_user = f"{V1}/users/{user['id']}?cascade=true"
            assert client.delete(url_user, headers=ADMIN).status_code == 204
            assert listing(client, "blogs") == ([], 0)
            assert client.delete(f"{V1}/tags/{tag['id']}", headers=ADMIN).status_code == 204
            with app.app_context():
                flask_migrate.downgrade(revision="base")
            assert not BLOG_TABLES & table_names(app)
        finally:
            dispose(app)


@pytest.mark.slow  # a real `scheduler-service run` per database
def test_the_done_scenario_through_the_running_service(
    database: dict[str, Any], tmp_path: Path
) -> None:
    """Issue 6's acceptance, over HTTP against `scheduler-service run` (which migrates)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEDULER_")}
    env.update(
        SCHEDULER_INSTANCE_PATH=str(tmp_path / "instance"),
        SCHEDULER_ADMIN_PASSWORD=ADMIN_PASSWORD,
        PYTHONUNBUFFERED="1",
        **database,
    )
    server = Server(env, tmp_path, "blog")
    try:
        server.wait_healthy()
        user = server.request("POST", f"{V1}/users", {"name": "linda", "age": 30})
        assert user.status == 201 and user.headers["Location"].endswith(
            f"/users/{user.json()['id']}"
        )
        tags = [server.request("POST", f"{V1}/tags", {"name": n}) for n in ("ops", "cron")]
        assert [t.status for t in tags] == [201, 201]
        body = blog_body(user.json()["id"], tags=["ops", "cron"])
        blog = server.request("POST", f"{V1}/blogs", body)
        assert blog.status == 201 and blog.json()["tags"] == ["cron", "ops"]
        by_tag = server.request("GET", f"{V1}/blogs?tag=ops")
        assert by_tag.status == 200 and by_tag.json() == [blog.json()]
        assert by_tag.headers["X-Total-Count"] == "1"
        url = f"{V1}/blogs/{blog.json()['id']}"
        patched = server.request("PATCH", url, {"title": "Cron, revisited"})
        assert patched.status == 200 and patched.json()["title"] == "Cron, revisited"
        users_before = server.request("GET", f"{V1}/users").json()
        duplicate = server.request("POST", f"{V1}/users", {"name": "linda"})
        assert duplicate.status == 409 and duplicate.json()["code"] == 409
        assert duplicate.json()["errors"] == {"name": "already taken"}
        assert server.request("GET", f"{V1}/users").json() == users_before
        assert server.request("DELETE", url).status == 204
        assert server.request("GET", url).status == 404
        assert server.request("DELETE", f"{V1}/users/{user.json()['id']}").status == 204
        server.terminate()  # a clean stop closes its database connections
        server.assert_no_secret_in_stderr()
    finally:
        server.close()
