"""A tiny HTML reader for the dashboard tests (stdlib html.parser): elements by tag and
attributes, and their text."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

from flask.testing import FlaskClient

from tests.support.credentials import PASSWORDS

_VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "wbr",
}


class Element:
    def __init__(self, tag: str, attrs: dict[str, str], parent: Element | None) -> None:
        self.tag = tag
        self.attrs = attrs
        self.parent = parent
        self.children: list[Element | str] = []

    def text(self) -> str:
        parts = [c if isinstance(c, str) else c.text() for c in self.children]
        return " ".join("".join(parts).split())

    def all(self, tag: str | None = None, **attrs: str | bool) -> list[Element]:
        """Descendants with this tag whose attributes match (True: present; class_: one
        of the classes; data_x: data-x)."""
        found = []
        for child in self.children:
            if isinstance(child, str):
                continue
            if _matches(child, tag, attrs):
                found.append(child)
            found.extend(child.all(tag, **attrs))
        return found

    def one(self, tag: str | None = None, **attrs: str | bool) -> Element:
        found = self.all(tag, **attrs)
        assert len(found) == 1, f"{len(found)} <{tag} {attrs}>"
        return found[0]

    def __getitem__(self, name: str) -> str:
        return self.attrs[name]


def _matches(element: Element, tag: str | None, attrs: dict[str, Any]) -> bool:
    if tag is not None and element.tag != tag:
        return False
    for key, wanted in attrs.items():
        name = "class" if key == "class_" else key.replace("_", "-")
        value = element.attrs.get(name)
        if wanted is True:
            if value is None:
                return False
        elif name == "class":
            if wanted not in (value or "").split():
                return False
        elif value != wanted:
            return False
    return True


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {}, None)
        self.current = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v if v is not None else "" for k, v in attrs}, self.current)
        self.current.children.append(element)
        if tag not in _VOID:
            self.current = element

    def handle_endtag(self, tag: str) -> None:
        node: Element | None = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data: str) -> None:
        self.current.children.append(data)


def parse(html: str) -> Element:
    builder = _Builder()
    builder.feed(html)
    builder.close()
    return builder.root


def page(client: FlaskClient, url: str, status: int = 200) -> Element:
    """GET a dashboard page, check its status, parse it."""
    response = client.get(url)
    assert response.status_code == status, response.get_data(as_text=True)[:2000]
    return parse(response.get_data(as_text=True))


def sign_in(client: FlaskClient, user: str, password: str | None = None) -> None:
    """Sign ``client`` in through the form; it must succeed."""
    response = client.post(
        "/ui/login", data={"username": user, "password": password or PASSWORDS[user]}
    )
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
