"""Operational jobs: HTTP health checks, disk-usage checks and old-file cleanup.

Their arguments are checked against their annotations (``jobs._args``) when a job is created
and again when it runs. ``http_check`` reaches public addresses only unless networks are
allowed (``jobs._http``); ``cleanup_old_files`` works only inside the job file roots.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import shutil
import stat
import time

from ._args import (
    AbsolutePath,
    Days,
    FileGlob,
    FilePath,
    HttpStatus,
    HttpUrl,
    Percent,
    Timeout,
    checked,
)
from ._http import REDIRECTS, CheckFailed, get_status, shown
from ._limits import JobLimits

logger = logging.getLogger(__name__)


@checked
def http_check(url: HttpUrl, expect_status: HttpStatus = 200, timeout: Timeout = 10.0) -> dict:
    """GET url (http/https only) and fail unless it answers expect_status within timeout seconds.

    Redirects are followed (up to 5) unless expect_status is itself a redirect status.
    Loopback, private, link-local and metadata addresses are refused, redirects included,
    unless SCHEDULER_JOB_HTTP_ALLOWED_NETWORKS allows them. Credentials in the URL are sent
    as HTTP Basic to its own origin and never shown.
    """
    where = shown(url)
    start = time.monotonic()
    try:
        status = get_status(url, timeout=timeout, follow_redirects=expect_status not in REDIRECTS)
    except CheckFailed as exc:
        logger.warning("http_check: %s: %s", where, exc)
        raise RuntimeError(f"http_check {where}: {exc}") from None
    elapsed_ms = round((time.monotonic() - start) * 1000, 1)

    if status != expect_status:
        logger.warning(
            "http_check: %s answered %s, expected %s (%.1f ms)",
            where,
            status,
            expect_status,
            elapsed_ms,
        )
        raise RuntimeError(f"http_check {where}: got HTTP {status}, expected {expect_status}")
    logger.info("http_check: %s answered %s in %.1f ms", where, status, elapsed_ms)
    return {"url": where, "status": status, "elapsed_ms": elapsed_ms}


@checked
def disk_usage(path: AbsolutePath = "/", max_percent: Percent | None = None) -> dict:
    """Report disk usage of the filesystem holding path; fail if % used exceeds max_percent.

    It reads the file system's counters only (statvfs), no file: any absolute path will do.
    """
    try:
        usage = shutil.disk_usage(path)
    except FileNotFoundError:
        raise ValueError("path does not exist") from None
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


@checked
def cleanup_old_files(
    folder: FilePath, older_than_days: Days, pattern: FileGlob = "*", dry_run: bool = False
) -> dict:
    """Delete files in folder (not subfolders) matching glob pattern, older than older_than_days.

    folder: inside the job file roots; the service's own files there are always kept.
    """
    if not os.path.isdir(folder):
        raise ValueError("folder: not an existing directory")
    limits = JobLimits.current()
    root = limits.root_of(folder) or folder  # folder is a real path inside a root
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
            if limits.is_protected(entry.path, root) or not (
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
