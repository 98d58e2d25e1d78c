"""The test users' passwords, their hashes, and HTTP Basic headers for each role."""

from __future__ import annotations

import base64

from werkzeug.security import generate_password_hash

PASSWORDS = {"admin": "admin-pass-1", "operator": "operator-pass-1", "viewer": "viewer-pass-1"}
# A cheap hash method keeps the suite fast; the service's default is scrypt.
PASSWORD_HASHES = {
    role: generate_password_hash(pw, method="pbkdf2:sha256:1000") for role, pw in PASSWORDS.items()
}


def basic(user: str, password: str) -> dict[str, str]:
    """Return an Authorization header for HTTP Basic."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


ADMIN = basic("admin", PASSWORDS["admin"])
OPERATOR = basic("operator", PASSWORDS["operator"])
VIEWER = basic("viewer", PASSWORDS["viewer"])
