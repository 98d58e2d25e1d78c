"""Side-by-side benchmark: vanilla Flask-APScheduler (the shared kit) vs scheduler-service.

    python bench/run.py [--stores memory,sqlite,postgres,redis] [--runs 3] [--quick]
                        [--kit ../shared/bench] [--out bench/RESULTS.md]

For each store, and each run, the two servers are started one at a time on the same store
kind, each on a free port of 127.0.0.1, and driven by the same clients (the kit's api_bench.py
and fire_bench.py). Figures are medians over the runs (min-max beside them); the table goes to
stdout and, as markdown, to --out. Progress lines go to stderr. See bench/README.md.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import datetime as dt
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
STORES = ("memory", "sqlite", "postgres", "redis")
PERSISTENT = ("sqlite", "postgres", "redis")
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
PG_TABLE = "ss_bench_jobs"
REDIS_DB = 12
REDIS_KEYS = ("ss_bench.jobs", "ss_bench.run_times")
PRELOAD = 10_000
CLK = os.sysconf("SC_CLK_TCK")

_LIVE: list[subprocess.Popen] = []


def log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)


# -- processes ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (all its threads), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        if proc in _LIVE:
            _LIVE.remove(proc)
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    if proc in _LIVE:
        _LIVE.remove(proc)


@atexit.register
def _stop_all() -> None:
    for p in list(_LIVE):
        stop(p)


class Server:
    """One server process; started by Target.start, stopped by stop()."""

    def __init__(self, proc: subprocess.Popen, port: int, ready_url: str, logfile: Path):
        self.proc, self.port, self.ready_url, self.logfile = proc, port, ready_url, logfile
        self.base = f"http://127.0.0.1:{port}/scheduler"

    def wait_ready(self, auth: tuple[str, str], timeout: float) -> float:
        """Seconds from the process start until ready_url answers 200."""
        t0 = self.t0
        deadline = t0 + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}: {self.tail()}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(self.ready_url, auth=auth, timeout=2).status_code == 200:
                    return time.monotonic() - t0
            time.sleep(0.05)
        raise RuntimeError(f"server not ready after {timeout:.0f}s: {self.tail()}")

    def tail(self) -> str:
        try:
            return self.logfile.read_text()[-1500:]
        except OSError:
            return ""

    def stop(self) -> None:
        stop(self.proc)


def spawn(cmd: list[str], env: dict[str, str], cwd: Path, logfile: Path) -> subprocess.Popen:
    out = open(logfile, "ab")  # noqa: SIM115 - kept open for the child's lifetime
    proc = subprocess.Popen(  # noqa: S603
        cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )
    out.close()
    _LIVE.append(proc)
    return proc


# -- the two targets ---------------------------------------------------------------------------


class Target:
    name = ""

    def __init__(self, store: str, kit: Path, tmp: Path):
        self.store, self.kit, self.tmp = store, kit, tmp
        self.fire_log = tmp / f"{self.name}-fires.log"

    def base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SCHEDULER_", "BASELINE_"))}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(self.kit), env.get("PYTHONPATH")]))
        env["FIRE_LOG"] = str(self.fire_log)
        return env


class Vanilla(Target):
    name = "vanilla"
    auth = ("admin", "admin")

    def start(self, *, preload: int = 0, reset: bool = True) -> Server:
        env = self.base_env()
        env.update(
            BASELINE_STORE=self.store,
            BASELINE_PRELOAD=str(preload),
            BASELINE_RESET="1" if reset else "0",
            BASELINE_DB=f"sqlite:///{self.tmp}/baseline.db",
            BASELINE_PG_URL=PG_URL,
        )
        port = free_port()
        t0 = time.monotonic()
        proc = spawn(
            [PY, str(self.kit / "baseline_app.py"), str(port)],
            env,
            self.kit,
            self.tmp / "vanilla.log",
        )
        srv = Server(proc, port, f"http://127.0.0.1:{port}/scheduler", self.tmp / "vanilla.log")
        srv.t0 = t0
        return srv

    def before_restart(self, srv: Server) -> None:
        # FA's JOBS (job1) would collide with the persisted copy on a restart (ConflictingIdError)
        requests.delete(f"{srv.base}/jobs/job1", auth=self.auth, timeout=10)

    def cleanup(self) -> None:
        if self.store == "postgres":
            pg_drop("baseline_bench_jobs")
        elif self.store == "redis":
            redis_delete(14, ("baseline_bench.jobs", "baseline_bench.run_times"))


class Ours(Target):
    name = "scheduler-service"

    def __init__(self, store: str, kit: Path, tmp: Path):
        super().__init__(store, kit, tmp)
        self.auth = ("admin", "Bench-" + secrets.token_urlsafe(18))
        self.instance = tmp / "instance"

    def store_url(self) -> str:
        return {
            "memory": "memory://",
            "sqlite": f"sqlite:///{self.tmp}/jobs.sqlite",
            "postgres": f"{PG_URL}?tablename={PG_TABLE}",
            "redis": f"redis://127.0.0.1:6379/{REDIS_DB}"
            f"?jobs_key={REDIS_KEYS[0]}&run_times_key={REDIS_KEYS[1]}",
        }[self.store]

    def cleanup(self) -> None:
        if self.store == "postgres":
            pg_drop(PG_TABLE)
        elif self.store == "redis":
            redis_delete(REDIS_DB, REDIS_KEYS)
        elif self.store == "sqlite":
            (self.tmp / "jobs.sqlite").unlink(missing_ok=True)
        shutil.rmtree(self.instance, ignore_errors=True)

    def start(self, *, preload: int = 0, reset: bool = True) -> Server:
        if reset:
            self.cleanup()
        self.instance.mkdir(parents=True, exist_ok=True)
        env = self.base_env()
        env.update(
            SCHEDULER_INSTANCE_PATH=str(self.instance),
            SCHEDULER_ADMIN_USER=self.auth[0],
            SCHEDULER_ADMIN_PASSWORD=self.auth[1],
            SCHEDULER_JOBSTORE_URL=self.store_url(),
            SCHEDULER_EXECUTORS=json.dumps({"default": {"type": "threadpool", "max_workers": 20}}),
            SCHEDULER_ALLOWED_MODULES='["jobs","baseline_jobs"]',
        )
        if preload:
            env["SCHEDULER_JOBS_FILE"] = str(self.jobs_file(preload))
        port = free_port()
        exe = str(Path(PY).parent / "scheduler-service")
        logfile = self.tmp / "ours.log"
        t0 = time.monotonic()
        proc = spawn([exe, "run", "--port", str(port)], env, REPO, logfile)
        srv = Server(proc, port, f"http://127.0.0.1:{port}/healthz", logfile)
        srv.t0 = t0
        return srv

    def jobs_file(self, n: int) -> Path:
        """The same N jobs as the kit's BASELINE_PRELOAD, as declared jobs (TOML)."""
        path = self.tmp / f"preload-{n}.toml"
        if not path.exists():
            lines = []
            for i in range(n):
                lines += [
                    "[[jobs]]",
                    f'id = "pre{i}"',
                    'func = "baseline_jobs:print_test"',
                    f'args = ["n{i}"]',
                    'trigger = "interval"',
                    "hours = 1",
                    "",
                ]
            path.write_text("\n".join(lines))
        return path

    def before_restart(self, srv: Server) -> None:
        pass


# -- stores ------------------------------------------------------------------------------------


def pg_drop(table: str) -> None:
    import psycopg

    with psycopg.connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=postgres", connect_timeout=5, autocommit=True
    ) as c:
        c.execute(f'DROP TABLE IF EXISTS "{table}"')


def redis_delete(db: int, keys: tuple[str, ...]) -> None:
    import redis

    redis.Redis(host="127.0.0.1", port=6379, db=db, socket_timeout=5).delete(*keys)


def store_reachable(store: str) -> str | None:
    """None if the store answers, else why not."""
    try:
        if store == "postgres":
            import psycopg

            with psycopg.connect(
                "host=127.0.0.1 port=5432 user=postgres dbname=postgres", connect_timeout=5
            ) as c:
                c.execute("SELECT 1")
        elif store == "redis":
            import redis

            redis.Redis(host="127.0.0.1", port=6379, socket_timeout=5).ping()
    except Exception as exc:  # any driver error means: skip this store
        return f"{type(exc).__name__}: {exc}"
    return None


# -- the measurements --------------------------------------------------------------------------


def run_client(script: Path, args: list[str], timeout: float) -> dict:
    cmd = [PY, str(script), *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)  # noqa: S603
    if r.returncode != 0 or not r.stdout.strip():
        raise RuntimeError(f"{script.name} failed ({r.returncode}): {r.stderr[-800:]}")
    if r.stderr.strip():
        log(f"  {script.name}: {r.stderr.strip()[-300:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def measure(t: Target, kit: Path, cfg: argparse.Namespace, tag: str) -> dict:
    """One run of one target on one store: every figure we report."""
    fig: dict[str, float | None] = {}
    user, pw = t.auth
    creds = [f"--user={user}", f"--password={pw}"]  # a password may start with "-"
    ready_timeout = 300

    # 1. API throughput and server CPU per request, then firing, on an empty store.
    log(f"{tag}: {t.name} api...")
    srv = t.start()
    try:
        srv.wait_ready(t.auth, ready_timeout)
        time.sleep(0.5)
        cpu0 = cpu_seconds(srv.proc.pid)
        n = cfg.api_jobs
        out = run_client(
            kit / "api_bench.py",
            [
                "--base",
                srv.base,
                "--func",
                "baseline_jobs:print_test",
                "--jobs",
                str(n),
                "--clients",
                "4",
                *creds,
            ],
            timeout=900,
        )
        cpu = cpu_seconds(srv.proc.pid) - cpu0
        fig["create/s"] = out["create_jobs_per_s"]
        fig["get/s"] = out["get_one_per_s"]
        fig["delete/s"] = out["delete_jobs_per_s"]
        fig["cpu_ms/req"] = cpu / (3 * n + 5) * 1000
        log(f"{tag}: {t.name} fire ({cfg.fire_jobs} due at once)...")
        out = run_client(
            kit / "fire_bench.py",
            [
                "--base",
                srv.base,
                "--func",
                "baseline_jobs:record_fire",
                "--jobs",
                str(cfg.fire_jobs),
                "--log",
                str(t.fire_log),
                *creds,
            ],
            timeout=300,
        )
        fig["fired"] = out["fired"]
        fig["late_p50"] = out["late_ms_p50"]
        fig["late_p99"] = out["late_ms_p99"]
        fig["late_max"] = out["late_ms_max"]
        if out.get("create_slack_s", 1) <= 0:
            log(f"{tag}: warning: fire_bench creation overran its lead")
    finally:
        srv.stop()

    # 2. 10,000 jobs: list-all, paged list, RSS.
    log(f"{tag}: {t.name} {cfg.preload} jobs (preload, list, RSS)...")
    srv = t.start(preload=cfg.preload)
    try:
        fig["preload_start_s"] = srv.wait_ready(t.auth, ready_timeout)
        # ours answers /healthz once serving; the declared jobs are upserted before that
        out = run_client(
            kit / "api_bench.py", ["--base", srv.base, "--func", "x:y", "--list-only", *creds], 300
        )
        fig["list_all_ms"] = out["list_all_ms_median"]
        fig["listed"] = out["list_all_returned"]
        if isinstance(t, Ours):
            lat = []
            with requests.Session() as s:
                s.auth = t.auth
                for _ in range(20):
                    t1 = time.perf_counter()
                    r = s.get(
                        f"{srv.base}/jobs",
                        params={"limit": 100, "offset": cfg.preload // 2},
                        timeout=60,
                    )
                    lat.append(time.perf_counter() - t1)
                    r.raise_for_status()
                if len(r.json()) != min(100, cfg.preload):
                    log(f"{tag}: warning: paged list returned {len(r.json())} jobs")
            fig["paged_ms"] = statistics.median(lat) * 1000
        fig["rss_mb"] = rss_mb(srv.proc.pid)
        t.before_restart(srv)
    finally:
        srv.stop()

    # 3. start-up with the jobs persisted (no reset, no preload)
    if t.store in PERSISTENT:
        log(f"{tag}: {t.name} restart with {cfg.preload} persisted jobs...")
        srv = t.start(reset=False)
        try:
            fig["startup_s"] = srv.wait_ready(t.auth, ready_timeout)
            r = requests.get(f"{srv.base}/jobs", auth=t.auth, timeout=120)
            got = len(r.json()) if r.ok else -1
            if got < cfg.preload:
                log(f"{tag}: warning: only {got} jobs after restart")
        finally:
            srv.stop()
    t.cleanup()
    return fig


# -- report ------------------------------------------------------------------------------------

ROWS = [  # key, label, better ("higher"/"lower"/None), fmt
    ("create/s", "create req/s", "higher", "{:.0f}"),
    ("get/s", "get req/s", "higher", "{:.0f}"),
    ("delete/s", "delete req/s", "higher", "{:.0f}"),
    ("cpu_ms/req", "server CPU / request (ms)", "lower", "{:.2f}"),
    ("list_all_ms", "list-all @10k jobs (ms, median of 5)", "lower", "{:.0f}"),
    ("paged_ms", "paged list 100 of 10k, offset 5k (ms p50, 20 calls)", "lower", "{:.1f}"),
    ("fired", "fired of 1000 due at once", "higher", "{:.0f}"),
    ("late_p50", "firing lateness p50 (ms)", "lower", "{:.0f}"),
    ("late_p99", "firing lateness p99 (ms)", "lower", "{:.0f}"),
    ("late_max", "firing lateness max (ms)", "lower", "{:.0f}"),
    ("rss_mb", "RSS @10k jobs (MB)", "lower", "{:.0f}"),
    ("startup_s", "start-up with 10k persisted jobs (s)", "lower", "{:.2f}"),
    ("preload_start_s", "start-up while preloading 10k jobs (s, info)", "lower", "{:.2f}"),
]


def cell(values: list, fmt: str) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "n/a"
    med = statistics.median(values)
    if len(values) == 1:
        return fmt.format(med)
    return f"{fmt.format(med)} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def table(store: str, results: dict[str, list[dict]], preload: int, fire_jobs: int) -> list[str]:
    lines = [
        "| figure | vanilla FA | scheduler-service | ratio ours/vanilla |",
        "|---|---|---|---|",
    ]
    for key, label, better, fmt in ROWS:
        label = label.replace("5k", f"{preload // 2}").replace("10k", f"{preload // 1000}k")
        label = label.replace("1000", str(fire_jobs))
        va = [r.get(key) for r in results["vanilla"]]
        us = [r.get(key) for r in results["scheduler-service"]]
        if all(v is None for v in va + us):
            continue
        ratio = "n/a"
        vm = [v for v in va if v is not None]
        um = [v for v in us if v is not None]
        if vm and um and statistics.median(vm):
            ratio = f"{statistics.median(um) / statistics.median(vm):.2f}x ({better} is better)"
        lines.append(f"| {label} | {cell(va, fmt)} | {cell(us, fmt)} | {ratio} |")
    return lines


BENCH_PACKAGES = ("flask", "flask-apscheduler", "apscheduler", "waitress", "scheduler-service")


def machine(packages: tuple[str, ...] = BENCH_PACKAGES) -> list[str]:
    """Lines naming the machine, Python and the versions of ``packages``."""
    cpu = "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        mem = f"{int(f.readline().split()[1]) / 1024 / 1024:.1f} GiB"
    vers = []
    for pkg in packages:
        try:
            vers.append(f"{pkg} {metadata.version(pkg)}")
        except metadata.PackageNotFoundError:
            vers.append(f"{pkg} ?")
    return [
        f"- machine: nproc {len(os.sched_getaffinity(0))} ({os.cpu_count()} CPUs), {mem} RAM,"
        f" {cpu}",
        f"- Python {platform.python_version()} ({platform.platform()})",
        f"- packages: {', '.join(vers)}",
    ]


# -- main --------------------------------------------------------------------------------------


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--stores", default=",".join(STORES), help="comma-separated subset of " + ",".join(STORES)
    )
    p.add_argument("--runs", type=int, default=3)
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 1 run, 200 API jobs, 1000 preloaded, 100 due at once",
    )
    p.add_argument(
        "--kit",
        default=str(REPO / ".." / "shared" / "bench"),
        help="the shared benchmark kit (default ../shared/bench from the repo root)",
    )
    p.add_argument("--out", default=str(REPO / "bench" / "RESULTS.md"))
    p.add_argument("--api-jobs", type=int, default=2000, help="api_bench --jobs")
    p.add_argument("--note", default="", help="a line added to RESULTS.md")
    cfg = p.parse_args()
    cfg.preload, cfg.fire_jobs = PRELOAD, 1000
    if cfg.quick:
        cfg.runs, cfg.api_jobs, cfg.preload, cfg.fire_jobs = 1, 200, 1000, 100
    kit = Path(cfg.kit).resolve()
    for f in ("baseline_app.py", "baseline_jobs.py", "api_bench.py", "fire_bench.py"):
        if not (kit / f).is_file():
            p.error(f"--kit {kit}: no {f}")
    stores = [s.strip() for s in cfg.stores.split(",") if s.strip()]
    for s in stores:
        if s not in STORES:
            p.error(f"unknown store {s!r}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    started = dt.datetime.now(dt.UTC)
    skipped: dict[str, str] = {}
    results = {s: {"vanilla": [], "scheduler-service": []} for s in stores}
    tmps = {s: Path(tempfile.mkdtemp(prefix=f"ss-bench-{s}-")) for s in stores}
    atexit.register(lambda: [shutil.rmtree(d, ignore_errors=True) for d in tmps.values()])
    for store in stores:
        why = store_reachable(store)
        if why:
            log(f"[{store}] unreachable, skipped: {why}")
            skipped[store] = f"unreachable: {why}"
    # runs outermost, the file rewritten after each store: stopping early keeps whole runs
    for run in range(1, cfg.runs + 1):
        for store in stores:
            if store in skipped:
                continue
            tag = f"[{store}] run {run}/{cfg.runs}"
            got = {}
            try:
                for cls in (Vanilla, Ours):
                    t = cls(store, kit, tmps[store])
                    try:
                        fig = measure(t, kit, cfg, tag)
                    finally:
                        with contextlib.suppress(Exception):
                            t.cleanup()
                    got[t.name] = {k: round(v, 4) for k, v in fig.items()}
            except Exception as exc:
                log(f"{tag}: FAILED {exc}; store skipped from now on")
                skipped[store] = f"run {run} failed: {exc}"[:500]
                continue
            for name, fig in got.items():
                results[store][name].append(fig)
            write_report(cfg, started, stores, results, skipped, run)
    sections = write_report(cfg, started, stores, results, skipped, cfg.runs, final=True)
    return 0 if sections else 1


# What follows this line in --out is written by hand (analyses, other benchmarks) and kept.
KEEP_MARKER = "<!-- bench/run.py rewrites everything above this line and keeps what follows -->"


def write_report(cfg, started, stores, results, skipped, upto: int, final: bool = False) -> int:
    sections: list[str] = []
    for store in stores:
        res = results[store]
        n = len(res["vanilla"])
        if not n:
            continue
        lines = [f"### {store} ({n} run{'s' if n > 1 else ''})", ""]
        lines += table(store, res, cfg.preload, cfg.fire_jobs)
        if final:
            print("\n".join(lines) + "\n", flush=True)
        sections += [*lines, "", "Raw runs: `" + json.dumps(res) + "`", ""]
    took = int((dt.datetime.now(dt.UTC) - started).total_seconds())
    cmd = "python bench/run.py " + " ".join(sys.argv[1:])
    state = "" if final else f" (in progress: {upto} of {cfg.runs} runs done)"
    md = [
        "# Benchmark results: vanilla Flask-APScheduler vs scheduler-service",
        "",
        f"- date: {started:%Y-%m-%d %H:%M} UTC, took {took // 60} min {took % 60} s{state}",
        f"- command: `{cmd.strip()}`" + (" (quick smoke run)" if cfg.quick else ""),
        *machine(),
        f"- runs per store: {cfg.runs}; API jobs {cfg.api_jobs}, preload {cfg.preload}, "
        f"due at once {cfg.fire_jobs}; figures are medians (min-max)",
        *([f"- note: {cfg.note}"] if cfg.note else []),
        *[f"- skipped {s}: {why}" for s, why in skipped.items()],
        "",
        "How each figure is taken: see bench/README.md. The machine is shared: client and server "
        "run on the same 2 cores, so read the ratios, not the lone figures.",
        "",
        *sections,
    ]
    out = Path(cfg.out)
    kept = out.read_text().partition(KEEP_MARKER)[2] if out.is_file() else ""
    tail = ["", KEEP_MARKER + kept.rstrip()] if kept.strip() else ["", KEEP_MARKER]
    out.write_text("\n".join([*md, *tail]).rstrip() + "\n")
    log(f"wrote {cfg.out}")
    return len(sections)


if __name__ == "__main__":
    sys.exit(main())
