"""Sampling profiles of the running server with py-spy (outside measured windows).

``py_spy_under_load`` drives the server with N clients, records every gunicorn
worker with ``py-spy record --format raw`` (collapsed stacks) for a few
seconds, and summarises: top functions by own time, by inclusive time, and own
time grouped by library. Only the thread holding the GIL is sampled (``--gil``), so the profile shows
where Python spends CPU, not where it waits for PostgreSQL.
"""
from __future__ import annotations

import re
import subprocess
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import _cluster
import _flow
import _load

PY_SPY = _cluster.VENV_BIN / "py-spy"
FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]*?)(?::(?P<line>\d+))?\)$")
LIBRARIES = ("SpiffWorkflow", "sqlalchemy", "psycopg", "jsonschema", "flask_smorest", "marshmallow", "flask",
             "werkzeug", "RestrictedPython", "gunicorn", "json", "bpm_server", "lxml", "rq", "redis", "argon2",
             "apispec", "copy", "uuid", "http", "socket", "selectors", "threading", "logging", "datetime")


def library_of(path: str) -> str:
    parts = Path(path).parts
    for name in LIBRARIES:
        if name in parts or path.endswith(f"{name}.py") or f"/{name}/" in path:
            return name
    if "site-packages" in parts:
        i = parts.index("site-packages")
        return parts[i + 1] if i + 1 < len(parts) else "site-packages"
    return Path(path).stem or "?"


def summarise(raw_files: list[Path], top: int = 25) -> dict[str, Any]:
    own: Counter = Counter()
    inclusive: Counter = Counter()
    by_library: Counter = Counter()
    total = 0
    for raw in raw_files:
        if not raw.exists():
            continue
        for line in raw.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            n = int(count)
            total += n
            frames = []
            for frame in stack.split(";"):
                m = FRAME.match(frame.strip())
                frames.append((m["func"], m["file"]) if m else (frame.strip(), ""))
            if not frames:
                continue
            func, path = frames[-1]
            own[f"{func} ({_short(path)})"] += n
            by_library[library_of(path)] += n
            for func, path in set(frames):
                inclusive[f"{func} ({_short(path)})"] += n

    def rows(counter: Counter) -> list[dict[str, Any]]:
        return [{"function": k, "samples": v, "percent": round(100 * v / total, 1)}
                for k, v in counter.most_common(top)]

    return {"samples": total, "top_self": rows(own), "top_inclusive": rows(inclusive),
            "self_by_library": [{"library": k, "percent": round(100 * v / total, 1)}
                                for k, v in by_library.most_common(20)] if total else []}


def _short(path: str) -> str:
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1]
    if "/bpm_server/" in path:
        return "bpm_server/" + path.split("/bpm_server/", 1)[1]
    return path


def py_spy_under_load(cluster: _cluster.Cluster, seeded: _cluster.Seeded, start_via: str, clients: int,
                      seconds: float, plan: list | None = None) -> dict[str, Any]:
    stop = threading.Event()
    threads = [_load.Client(i, cluster.port, seeded, start_via, plan or _flow.plan(), stop) for i in range(clients)]
    for t in threads:
        t.start()
    time.sleep(3)
    outdir = Path(tempfile.mkdtemp(prefix="bpm-bench-pyspy-"))
    workers = cluster.web_pids()[1:]  # not the gunicorn master
    spies = []
    for pid in workers:
        out = outdir / f"web-{pid}.txt"
        command = [str(PY_SPY), "record", "--pid", str(pid), "--duration", str(int(seconds)),
                   "--rate", "200", "--gil", "--format", "raw", "--output", str(out), "--nonblocking"]
        spies.append((out, subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)))
    failures = []
    for _out, spy in spies:
        _, err = spy.communicate(timeout=seconds + 60)
        if spy.returncode != 0:
            failures.append(err.decode(errors="replace")[-300:])
    stop.set()
    for t in threads:
        t.join(300)
    summary = summarise([out for out, _ in spies])
    summary.update({"clients": clients, "seconds": seconds, "processes": len(workers), "raw_dir": str(outdir),
                    "failures": failures})
    return summary
