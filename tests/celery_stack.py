"""A real Redis server and a real Celery worker on loopback, for any test whose
tasks must run the way production runs them (webhook deliveries, erasure, ...).

    redis = start_redis(tmp_path)                 # Debian's redis-server, a free port
    worker = start_worker(env, tmp_path / "worker.log")   # `celery -A portal worker`
    ...
    worker.stop(); redis.stop()

`start_worker`'s `env` is the portal's environment (its DATABASE_URL above all:
the worker reads and writes the same database as the process that queued the
task) plus DUALKEY_CELERY_BROKER_URL; it returns once the worker says it is ready.
The session fixture `redis_url` gives one Redis per test session (per xdist worker).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import support

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
READY = "ready."


@dataclass
class Service:
    proc: subprocess.Popen
    url: str = ""
    log_path: Path | None = None

    def stop(self) -> None:
        support.stop_process(self.proc)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""


def start_redis(workdir: Path) -> Service:
    """redis-server on a free loopback port, persisting nothing, in `workdir`."""
    port = support.free_port()
    log_path = workdir / "redis.log"
    proc = subprocess.Popen(
        [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir), "--protected-mode", "yes"],
        stdout=open(log_path, "wb"), stderr=subprocess.STDOUT)
    support.wait_for_port(port, proc)
    return Service(proc, f"redis://127.0.0.1:{port}/0", log_path)


def start_worker(env: dict, log_path: Path, *, timeout: float = 60.0) -> Service:
    """`celery -A portal worker` (one process, solo pool: the machine is small) with
    `env` over the test's own environment; returns when it has connected and is ready."""
    out = open(log_path, "wb")
    proc = subprocess.Popen(
        [support.PYTHON, "-m", "celery", "-A", "portal", "worker", "--pool", "solo", "--loglevel", "INFO",
         "--without-gossip", "--without-mingle", "-n", f"test-{support.free_port()}@%h"],
        cwd=support.ROOT, env={**os.environ, **support.AWS_ENV, **env},
        stdout=out, stderr=subprocess.STDOUT)
    worker = Service(proc, env.get("DUALKEY_CELERY_BROKER_URL", ""), log_path)
    deadline = time.monotonic() + timeout
    while READY not in worker.log():
        if proc.poll() is not None:
            raise RuntimeError(f"the Celery worker exited with {proc.returncode}:\n{worker.log()}")
        if time.monotonic() > deadline:
            worker.stop()
            raise RuntimeError(f"the Celery worker was not ready within {timeout}s:\n{worker.log()}")
        time.sleep(0.1)
    return worker


def wait_until(predicate, *, timeout: float = 30.0, interval: float = 0.2, what: str = "the condition"):
    """Poll `predicate` until it returns something truthy (returned), or fail."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout}s")
        time.sleep(interval)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """One real Redis server per test session (per xdist worker)."""
    redis = start_redis(tmp_path_factory.mktemp("redis"))
    yield redis.url
    redis.stop()
