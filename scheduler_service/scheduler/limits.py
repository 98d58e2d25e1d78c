"""What a job may hold so that every job store holds it alike: its id, and its arguments.

The id alphabet is what every store keeps as it is: ZooKeeper refuses the znode names "." and
".." and some non-ASCII characters, RethinkDB primary keys stop at 127 bytes, and MariaDB's
default collation ignores case and trailing spaces (the stores' own columns are made exact too:
see stores/sqlstore.py). Its characters need no escaping in a URL path (RFC 3986 ``pchar``).

Arguments: pickling a value nested about 500 levels deep fails with RecursionError, and the
MariaDB store keeps a whole job in a 64 KiB BLOB; a JSON value pickles into at most about 2.25
times its JSON size (floats such as ``1.0``), so 8 KiB of args and 8 KiB of kwargs fit.
"""

from __future__ import annotations

import json
import re
from typing import Any

ID_MAX_LENGTH = 127
ID_PATTERN = rf"^[A-Za-z0-9_:@-][A-Za-z0-9_.:@-]{{0,{ID_MAX_LENGTH - 1}}}$"
ID_RULE = f"1 to {ID_MAX_LENGTH} of A-Z a-z 0-9 _ - . : @, not starting with '.'"
_ID = re.compile(ID_PATTERN)

MAX_ARGS_DEPTH = 32  # levels of lists and objects, the args list or kwargs object included
MAX_ARGS_BYTES = 8192  # each of args and kwargs, as compact JSON in UTF-8


def is_new_id(job_id: str) -> bool:
    """Tell whether ``job_id`` is in the id alphabet (ids stored before it may not be)."""
    return _ID.fullmatch(job_id) is not None


def check_json_bounds(value: Any) -> None:
    """Refuse a value nested deeper than MAX_ARGS_DEPTH or longer than MAX_ARGS_BYTES as JSON.

    The walk is iterative, and stops as soon as the value is known to be too big: its cost is
    bounded whatever the value.

    :raises ValueError: naming the bound passed.
    """
    budget = MAX_ARGS_BYTES  # every value takes at least a byte of JSON, a string its length
    stack = [(value, 1)]
    while stack and budget >= 0:
        item, depth = stack.pop()
        budget -= 1 + (len(item) if isinstance(item, str) else 0)
        if not isinstance(item, dict | list | tuple):
            continue
        if depth > MAX_ARGS_DEPTH:
            raise ValueError(f"nested more than {MAX_ARGS_DEPTH} levels deep")
        if len(item) * (2 if isinstance(item, dict) else 1) > budget:  # too many to fit
            budget = -1
            break
        children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children)
    too_big = budget < 0
    if not too_big:  # a small value: measure it exactly (non-JSON values from TOML as text)
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
        too_big = len(text.encode()) > MAX_ARGS_BYTES
    if too_big:
        raise ValueError(f"more than {MAX_ARGS_BYTES} bytes as JSON")
