"""Operational jobs: HTTP health checks, disk-usage checks and old-file cleanup."""

from __future__ import annotations

import fnmatch
import http.client
import logging
import math
import os
import shutil
import stat
import time
import urllib.error
import urllib.parse
import urllib.request

logger = logging.getLogger(__name__)

_USER_AGENT = "scheduler-service-http-check/1"


class _HttpOnlyRedirectHandler(urllib.request.HTTPRedirectHandler):
    """Follow redirects only to http/https URLs (urllib would also follow ftp)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        scheme = urllib.parse.urlsplit(newurl).scheme.lower()
        if scheme not in ("http", "https"):
            raise urllib.error.HTTPError(
                newurl, code, f"refusing redirect to non-http(s) URL {newurl!r}", headers, fp
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_opener = urllib.request.build_opener(_HttpOnlyRedirectHandler)


def _number(name: str, value: object) -> float:
    """Return value as a finite float, or raise ValueError naming the argument."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def http_check(url: str, expect_status: int = 200, timeout: float = 10.0) -> dict:
    """GET url (http/https only) and fail unless it answers expect_status within timeout seconds."""
    if not isinstance(url, str):
        raise ValueError(f"url must be a string, got {url!r}")
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme.lower() not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"url must be an absolute http:// or https:// URL, got {url!r}")
    if isinstance(expect_status, bool) or not isinstance(expect_status, int):
        raise ValueError(f"expect_status must be an integer HTTP status, got {expect_status!r}")
    if not 100 <= expect_status <= 599:
        raise ValueError(f"expect_status must be between 100 and 599, got {expect_status!r}")
    timeout = _number("timeout", timeout)
    if timeout <= 0:
        raise ValueError(f"timeout must be greater than 0, got {timeout!r}")

    # The scheme was checked above: only http and https reach urllib.
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT}, method="GET")  # noqa: S310
    start = time.monotonic()
    try:
        with _opener.open(request, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
        exc.close()
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        logger.warning("http_check: %s failed: %s", url, reason)
        raise RuntimeError(f"http_check {url}: request failed: {reason}") from exc
    elapsed_ms = round((time.monotonic() - start) * 1000, 1)

    if status != expect_status:
        logger.warning(
            "http_check: %s answered %s, expected %s (%.1f ms)",
            url,
            status,
            expect_status,
            elapsed_ms,
        )
        raise RuntimeError(f"http_check {url}: got HTTP status {status}, expected {expect_status}")
    logger.info("http_check: %s answered %s in %.1f ms", url, status, elapsed_ms)
    return {"url": url, "status": status, "elapsed_ms": elapsed_ms}


def disk_usage(path: str = "/", max_percent: float | None = None) -> dict:
    """Report disk usage of the filesystem holding path; fail if % used exceeds max_percent."""
    if not isinstance(path, str | os.PathLike) or not os.fspath(path):
        raise ValueError(f"path must be a non-empty path, got {path!r}")
    path = os.fspath(path)
    if max_percent is not None:
        max_percent = _number("max_percent", max_percent)
        if not 0 <= max_percent <= 100:
            raise ValueError(f"max_percent must be between 0 and 100, got {max_percent!r}")
    try:
        usage = shutil.disk_usage(path)
    except FileNotFoundError as exc:
        raise ValueError(f"path does not exist: {path!r}") from exc
    # Like df: used share of the space available to unprivileged users (used + free).
    available = usage.used + usage.free
    percent = round(usage.used / available * 100, 2) if available else 0.0
    result = {
        "path": path,
        "total": usage.total,
        "used": usage.used,
        "free": usage.free,
        "percent": percent,
    }
    if max_percent is not None and percent > max_percent:
        logger.warning("disk_usage: %s is %.2f%% used, above %.2f%%", path, percent, max_percent)
        raise RuntimeError(
            f"disk_usage {path}: {percent:.2f}% used exceeds max_percent {max_percent:g}%"
        )
    logger.info("disk_usage: %s is %.2f%% used (%d bytes free)", path, percent, usage.free)
    return result


def cleanup_old_files(
    folder: str, older_than_days: float, pattern: str = "*", dry_run: bool = False
) -> dict:
    """Delete files in folder (not subfolders) matching glob pattern, older than older_than_days."""
    if not isinstance(folder, str | os.PathLike) or not os.fspath(folder):
        raise ValueError(f"folder must be a non-empty path, got {folder!r}")
    folder = os.fspath(folder)
    if os.path.realpath(folder) == os.path.realpath(os.sep):
        raise ValueError("folder must not be the root directory '/'")
    if not os.path.isdir(folder):
        raise ValueError(f"folder is not an existing directory: {folder!r}")
    older_than_days = _number("older_than_days", older_than_days)
    if older_than_days < 0:
        raise ValueError(f"older_than_days must be >= 0, got {older_than_days!r}")
    if not isinstance(pattern, str) or not pattern:
        raise ValueError(f"pattern must be a non-empty glob, got {pattern!r}")
    if "/" in pattern or os.sep in pattern:
        raise ValueError(f"pattern must match names inside folder, not paths: {pattern!r}")
    dry_run = bool(dry_run)

    cutoff = time.time() - older_than_days * 86400
    deleted: list[str] = []
    kept = 0
    freed_bytes = 0
    failures: list[str] = []
    with os.scandir(folder) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            try:
                # lstat: a symlink is judged (and removed) as the link itself, never its target.
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # vanished meanwhile
            removable = stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)
            if not (
                removable and fnmatch.fnmatchcase(entry.name, pattern) and st.st_mtime < cutoff
            ):
                kept += 1
                continue
            if not dry_run:
                try:
                    os.unlink(entry.path)  # unlink never follows symlinks
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    failures.append(f"{entry.name}: {exc.strerror or exc}")
                    kept += 1
                    continue
            deleted.append(entry.name)
            freed_bytes += st.st_size

    verb = "would delete" if dry_run else "deleted"
    logger.info(
        "cleanup_old_files: %s %d file(s) (%d bytes) in %s older than %g day(s) matching %r; "
        "kept %d",
        verb,
        len(deleted),
        freed_bytes,
        folder,
        older_than_days,
        pattern,
        kept,
    )
    if failures:
        raise RuntimeError(
            f"cleanup_old_files {folder}: deleted {len(deleted)} file(s) but could not delete "
            f"{len(failures)}: " + "; ".join(failures)
        )
    return {
        "folder": folder,
        "deleted": deleted,
        "kept": kept,
        "dry_run": dry_run,
        "freed_bytes": freed_bytes,
    }
