"""The service's start-up and memory tricks, each measured on and off in the same run.

    python bench/tricks.py [--reps 5] [--quick] [--kit ../shared/bench]

1+2. Deferred Flask-Migrate (extensions.DeferredMigrate) and the head check read with ``ast``
     (migrate_lock.script_heads): a fresh interpreter builds the app as ``scheduler-service
     run`` does before it serves (``create_app(start=False)``: settings, routes, the head check)
     on a SQLite database already at head; wall time from before the first import until the
     app is built, and peak RSS. "on" is the code as it is; the other modes patch the code, in
     the probe only, the way it would read without a trick:
       - no-deferred: a plain ``flask_migrate.Migrate`` (imports Flask-Migrate and Alembic);
       - no-ast: heads from Alembic's ``ScriptDirectory`` (imports Alembic, not Flask-Migrate);
       - off: both of those;
       - plain: a plain ``Migrate`` and no head check of ours: ``flask_migrate.upgrade`` runs
         and Alembic finds nothing to do (the simplest code).
3.   One malloc arena at ``run`` (tuning.one_malloc_arena): a real ``scheduler-service run``
     with N jobs (10,000) in the memory store, listed whole (GET /scheduler/jobs) by 8
     concurrent clients (the server's 8 request threads), 3 rounds; server RSS before and
     after. Off: ``MALLOC_ARENA_MAX=64`` in the server's environment (the code then leaves
     glibc's per-thread arenas alone).
4.   ``gc.freeze()`` after the app is built (tuning.freeze_startup_objects): a burst of 1,000 date
     jobs due at one instant (the kit's fire_bench.py, memory store, 20 workers), lateness
     p50/p99. Off: a ``sitecustomize`` on the server's PYTHONPATH turns ``gc.freeze`` into a
     no-op (the ``gc.collect()`` before it still runs).

Tricks 3 and 4 show no gain here, on the memory store; on a SQLite store `bench/run.py` shows
both (list-all and RSS at 10,000 jobs: ARCHITECTURE.md, "Start-up tricks"), so they stay.

Modes alternate within each repetition, so a slow spell of the shared machine hits them all;
figures are medians over the repetitions (min-max beside them), ratios are on/off. Servers
are started and stopped with bench/run.py's helpers. Progress goes to stderr, the markdown
table to stdout.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import datetime as dt
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # bench/run.py: server start, RSS, the kit clients, machine lines

REPO, PY, log = bench.REPO, bench.PY, bench.log

# -- 1+2: start-up of the app on a database at head --------------------------------------------

STARTUP_MODES = ("on", "no-deferred", "no-ast", "off", "plain")

PROBE = r"""
import json, resource, sys, time
t0 = time.perf_counter()
mode = sys.argv[1]
if mode in ("no-deferred", "off", "plain"):  # extensions.py with a plain Migrate
    from flask_migrate import Migrate
    import scheduler_service.extensions as ext
    ext.migrate = Migrate(directory=ext.migrate.directory)
if mode in ("no-ast", "off"):  # the heads as Alembic reads them
    from alembic.script import ScriptDirectory
    import scheduler_service.migrate_lock as ml
    ml.script_heads = lambda versions=ml.VERSIONS: frozenset(
        ScriptDirectory(str(versions.parent)).get_heads())
if mode == "plain":  # no head check of ours: Alembic's upgrade decides
    import scheduler_service.migrate_lock as ml
    ml.at_head = lambda connection: False
from scheduler_service import create_app
app = create_app(start=False)
took = time.perf_counter() - t0
loaded = [m for m in ("alembic", "flask_migrate") if m in sys.modules]
with open("/proc/self/status") as f:
    rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
use = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"s": took, "cpu": use.ru_utime + use.ru_stime, "peak_mb": use.ru_maxrss / 1024,
                  "rss_mb": rss / 1024, "loaded": loaded}))
"""


def startup_env(tmp: Path) -> dict[str, str]:
    from werkzeug.security import generate_password_hash

    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEDULER_")}
    env.update(
        SCHEDULER_INSTANCE_PATH=str(tmp / "startup-instance"),
        SCHEDULER_ADMIN_USER="admin",
        # a hash: a plain password would add one scrypt hash (0.1 s) of noise to every start
        SCHEDULER_ADMIN_PASSWORD_HASH=generate_password_hash(secrets.token_urlsafe(18)),
        SCHEDULER_JOBSTORE_URL="memory://",
    )
    return env


def probe(mode: str, env: dict[str, str]) -> dict:
    r = subprocess.run(  # noqa: S603
        [PY, "-c", PROBE, mode], env=env, cwd=REPO, capture_output=True, text=True, timeout=120
    )
    if r.returncode != 0:
        raise RuntimeError(f"start-up probe {mode} failed: {r.stderr[-1500:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def bench_startup(tmp: Path, reps: int) -> dict[str, list[dict]]:
    env = startup_env(tmp)
    first = probe("on", env)  # a fresh database: migrates it to head
    assert "alembic" in first["loaded"], first
    out: dict[str, list[dict]] = {m: [] for m in STARTUP_MODES}
    for rep in range(reps):
        log(f"start-up probes, round {rep + 1}/{reps}")
        for mode in STARTUP_MODES:
            fig = probe(mode, env)
            out[mode].append(fig)
    expected = {"on": [], "no-ast": ["alembic"], "no-deferred": ["alembic", "flask_migrate"]}
    for mode, loaded in expected.items():
        if out[mode][0]["loaded"] != loaded:
            raise RuntimeError(f"probe {mode} loaded {out[mode][0]['loaded']}, not {loaded}")
    return out


# -- 3 and 4: a real server --------------------------------------------------------------------

SITECUSTOMIZE = """import gc, os
if os.environ.get("BENCH_TRICKS_NO_FREEZE"):  # bench/tricks.py: gc.freeze off
    gc.freeze = lambda: None
"""


class Target(bench.Ours):
    """bench/run.py's scheduler-service target, with extra environment for the server."""

    def __init__(self, store: str, kit: Path, tmp: Path, extra: dict[str, str]):
        super().__init__(store, kit, tmp)
        self.extra = extra

    def base_env(self) -> dict[str, str]:
        env = super().base_env()
        env.pop("MALLOC_ARENA_MAX", None)
        env.update(self.extra)
        env["PYTHONPATH"] = os.pathsep.join([str(self.tmp / "site"), env["PYTHONPATH"]])
        return env


def list_all(base: str, auth: tuple[str, str], n: int, clients: int, rounds: int) -> float:
    """``clients`` threads each list every job ``rounds`` times; return the wall seconds."""

    def one(_: int) -> None:
        with requests.Session() as s:
            s.auth = auth
            for _ in range(rounds):
                for _ in range(20):  # 503: password checks busy (throttle.py); retry
                    r = s.get(f"{base}/jobs", timeout=120)
                    if r.status_code != 503:
                        break
                    time.sleep(0.2)
                r.raise_for_status()
                if len(r.json()) != n:
                    raise RuntimeError(f"listed {len(r.json())} of {n} jobs")

    # one login first: the password is then known, and checked once, not by 8 at a time
    requests.get(f"{base}/jobs", params={"limit": 1}, auth=auth, timeout=30).raise_for_status()
    t0 = time.perf_counter()
    with cf.ThreadPoolExecutor(clients) as ex:
        list(ex.map(one, range(clients)))
    return time.perf_counter() - t0


def bench_arena(kit: Path, tmp: Path, cfg: argparse.Namespace) -> dict[str, list[dict]]:
    modes = {"on": {}, "off": {"MALLOC_ARENA_MAX": "64"}}
    out: dict[str, list[dict]] = {m: [] for m in modes}
    for rep in range(cfg.reps):
        for mode, extra in modes.items():
            log(f"malloc arena {mode}, round {rep + 1}/{cfg.reps}: {cfg.jobs} jobs listed...")
            t = Target("memory", kit, tmp, extra)
            srv = t.start(preload=cfg.jobs)
            try:
                srv.wait_ready(t.auth, 300)
                time.sleep(0.5)
                before = bench.rss_mb(srv.proc.pid)
                took = list_all(srv.base, t.auth, cfg.jobs, cfg.clients, cfg.rounds)
                time.sleep(0.5)
                after = bench.rss_mb(srv.proc.pid)
            finally:
                srv.stop()
                t.cleanup()
            out[mode].append({"rss_before": before, "rss_after": after, "list_s": took})
    return out


def bench_freeze(kit: Path, tmp: Path, cfg: argparse.Namespace) -> dict[str, list[dict]]:
    modes = {"on": {}, "off": {"BENCH_TRICKS_NO_FREEZE": "1"}}
    out: dict[str, list[dict]] = {m: [] for m in modes}
    for rep in range(cfg.reps):
        for mode, extra in modes.items():
            log(f"gc.freeze {mode}, round {rep + 1}/{cfg.reps}: {cfg.burst} due at once...")
            t = Target("memory", kit, tmp, extra)
            srv = t.start()
            try:
                srv.wait_ready(t.auth, 300)
                got = bench.run_client(
                    kit / "fire_bench.py",
                    [
                        "--base",
                        srv.base,
                        "--func",
                        "baseline_jobs:record_fire",
                        "--jobs",
                        str(cfg.burst),
                        "--lead",
                        "5",
                        "--log",
                        str(t.fire_log),
                        f"--user={t.auth[0]}",
                        f"--password={t.auth[1]}",
                    ],
                    timeout=300,
                )
            finally:
                srv.stop()
                t.cleanup()
            if got["fired"] != cfg.burst or got.get("create_slack_s", 1) <= 0:
                log(f"  warning: fired {got['fired']}/{cfg.burst}, slack {got['create_slack_s']}")
            out[mode].append({"p50": got["late_ms_p50"], "p99": got["late_ms_p99"]})
    return out


# -- report ------------------------------------------------------------------------------------


def med(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def cell(runs: list[dict], key: str, fmt: str) -> str:
    values = [r[key] for r in runs]
    spread = f" ({fmt.format(min(values))}-{fmt.format(max(values))})" if len(values) > 1 else ""
    return fmt.format(statistics.median(values)) + spread


def row(label: str, on: list[dict], off: list[dict], key: str, fmt: str) -> str:
    m_on, m_off = med(on, key), med(off, key)
    ratio = f"{m_on / m_off:.3f}" if m_off else "n/a"
    diff = fmt.format(m_off - m_on)
    return f"| {label} | {cell(on, key, fmt)} | {cell(off, key, fmt)} | {diff} | {ratio} |"


def report(res: dict[str, dict[str, list[dict]]], cfg: argparse.Namespace) -> list[str]:
    lines = [
        "| trick: figure | on | off | off - on | ratio on/off |",
        "|---|---|---|---|---|",
    ]
    if "startup" in res:
        s = res["startup"]
        for mode, what in (
            ("off", "1+2 both (plain Migrate, ScriptDirectory heads)"),
            ("plain", "1+2 both, simplest (plain Migrate, Alembic's upgrade checks)"),
            ("no-deferred", "1 alone off (plain Migrate; ast heads kept)"),
            ("no-ast", "2 alone off (ScriptDirectory heads; deferred kept)"),
        ):
            lines.append(row(f"{what}: start-up wall (s)", s["on"], s[mode], "s", "{:.3f}"))
            lines.append(row(f"{what}: start-up CPU (s)", s["on"], s[mode], "cpu", "{:.3f}"))
            lines.append(row(f"{what}: peak RSS (MB)", s["on"], s[mode], "peak_mb", "{:.1f}"))
    if "arena" in res:
        a = res["arena"]
        n = f"{cfg.jobs:,}"
        lines.append(row(f"3 one arena: RSS @{n} jobs, before listing (MB)", a["on"], a["off"],
                         "rss_before", "{:.1f}"))  # fmt: skip
        lines.append(row(
            f"3 one arena: RSS after {cfg.clients} clients x {cfg.rounds} list-all (MB)",
            a["on"], a["off"], "rss_after", "{:.1f}",
        ))  # fmt: skip
        lines.append(row(
            f"3 one arena: wall of those {cfg.clients * cfg.rounds} list-all (s)",
            a["on"], a["off"], "list_s", "{:.2f}",
        ))  # fmt: skip
    if "freeze" in res:
        f = res["freeze"]
        for key in ("p50", "p99"):
            lines.append(row(f"4 gc.freeze: lateness {key}, {cfg.burst:,} due at once (ms)",
                             f["on"], f["off"], key, "{:.0f}"))  # fmt: skip
    return lines


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=5, help="server repetitions per mode (default 5)")
    p.add_argument("--probes", type=int, default=0, help="start-up probes per mode (2 x reps)")
    p.add_argument("--quick", action="store_true", help="smoke run: 2 reps, 2,000 jobs, 200 due")
    p.add_argument("--only", default="startup,arena,freeze", help="subset of startup,arena,freeze")
    p.add_argument("--kit", default=str(REPO / ".." / "shared" / "bench"))
    cfg = p.parse_args()
    cfg.jobs, cfg.burst, cfg.clients, cfg.rounds = bench.PRELOAD, 1000, 8, 3
    if cfg.quick:
        cfg.reps, cfg.jobs, cfg.burst = 2, 2000, 200
    cfg.probes = cfg.probes or 2 * cfg.reps
    kit = Path(cfg.kit).resolve()
    if not (kit / "fire_bench.py").is_file():
        p.error(f"--kit {kit}: no fire_bench.py")
    only = [s.strip() for s in cfg.only.split(",") if s.strip()]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    started = dt.datetime.now(dt.UTC)
    tmp = Path(tempfile.mkdtemp(prefix="ss-bench-tricks-"))
    (tmp / "site").mkdir()
    (tmp / "site" / "sitecustomize.py").write_text(SITECUSTOMIZE)
    res: dict[str, dict[str, list[dict]]] = {}
    try:
        if "startup" in only:
            res["startup"] = bench_startup(tmp, cfg.probes)
        if "arena" in only:
            res["arena"] = bench_arena(kit, tmp, cfg)
        if "freeze" in only:
            res["freeze"] = bench_freeze(kit, tmp, cfg)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    took = int((dt.datetime.now(dt.UTC) - started).total_seconds())
    cmd = "python bench/tricks.py " + " ".join(sys.argv[1:])
    print(
        "\n".join(
            [
                f"- date: {started:%Y-%m-%d %H:%M} UTC, took {took // 60} min {took % 60} s",
                f"- command: `{cmd.strip()}`",
                *bench.machine(),
                f"- medians (min-max) of {cfg.probes} start-up probes and {cfg.reps} server runs"
                " per mode, modes alternating",
                "",
                *report(res, cfg),
                "",
                "Raw: `" + json.dumps(res, separators=(",", ":"), default=str) + "`",
            ]
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
