"""Slow clients do not block the self-hosted gatekeeper (http_server.serve's settings).

One client holds 1,100 connections open — more than waitress's default
connection limit (100) and than select()'s 1,024 descriptors — a third idle, a
third with a partial request, a third trickling a header a byte at a time; a
new client still gets /v1/health, every time, well within a second. The timed
comparison of servers is bench/bench_slow_clients.py; this checks the behaviour.
"""

from __future__ import annotations

import http.client
import resource
import selectors
import socket
import time
from urllib.parse import urlsplit

import pytest

SLOW = 1100
DEADLINE = 1.0  # seconds for each health answer (the bench's p99 is tens of ms)


@pytest.fixture(scope="module")
def own_gatekeeper(start_gatekeeper):
    # Its own process: the held connections must not slow the other tests' gatekeeper.
    return start_gatekeeper()


@pytest.fixture
def slow_connections(own_gatekeeper):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < SLOW + 200:
        if hard != resource.RLIM_INFINITY and hard < SLOW + 200:
            pytest.skip(f"needs {SLOW + 200} open files, the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (SLOW + 200, hard))
    parts = urlsplit(own_gatekeeper.url)
    address = (parts.hostname, parts.port)
    socks = []
    with selectors.DefaultSelector() as sel:
        for _ in range(SLOW):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(address)
            socks.append(s)
            sel.register(s, selectors.EVENT_WRITE)
        # The kernel completes the handshakes into the listen backlog even when
        # the server accepts nothing: wait for all of them.
        connected, deadline = 0, time.monotonic() + 10
        while connected < SLOW and time.monotonic() < deadline:
            for key, _ in sel.select(0.5):
                sel.unregister(key.fileobj)
                connected += 1
    assert connected == SLOW
    for i, s in enumerate(socks):
        if i % 3:
            s.send(b"POST /v1/sign HTTP/1.1\r\nHost: gatekeeper\r\nX-Slow: ")
    trickling = socks[2::3]

    def trickle():
        for s in trickling:
            try:
                s.send(b"a")
            except OSError:
                pass

    yield trickle
    for s in socks:
        s.close()


def health_seconds(url: str) -> float:
    parts = urlsplit(url)
    start = time.perf_counter()
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    try:
        conn.request("GET", "/v1/health")
        response = conn.getresponse()
        assert response.status == 200
        assert response.read()
    finally:
        conn.close()
    return time.perf_counter() - start


def test_health_answers_while_a_client_holds_1100_slow_connections(own_gatekeeper, slow_connections):
    time.sleep(0.5)  # the server has taken in what was sent
    seconds = []
    for _ in range(10):
        slow_connections()  # one more byte on each trickling connection
        try:
            seconds.append(health_seconds(own_gatekeeper.url))
        except OSError as exc:  # before: a timeout, the connection sat in the backlog
            pytest.fail(f"/v1/health did not answer: {exc!r} (answered so far: {seconds})")
        time.sleep(0.2)
    assert max(seconds) < DEADLINE, seconds
