"""The vendor's worker carrier (mode `worker`): a tenant's tickets carried from a
vendor-hosted location to one of the customer's, through both gatekeepers.

For each object (portal/moves/services.py holds the state; this only carries):

1. copy: a get grant at the source (`move_grant` with the job's subject), `/v1/sign`
   there; a single-use put grant at the destination, `/v1/sign` there (the agent's
   path: a presigned POST of exactly that key, type and size). The download streams
   straight into the POST's multipart body (its Content-Length computed up front),
   hashed with SHA-256 on the way: memory stays at one chunk, whatever the size.
   → `services.copied` (which compares with the manifest's digest).
2. verify: a get grant at the destination; the object is read back and hashed.
   → `services.verified`.
3. once all a ticket's objects are verified, `services.switch`; then the source's
   copies are erased (the gatekeeper's `delete` op on the ticket's prefix: every
   version and delete marker) and a receipt written to STORAGES["receipts"]
   → `services.source_erased`.

A failed ticket (an object refused for good, or changed) is not switched; its copies
at the destination are erased there (their receipt too) and it stays where it was.

Threads carry the bytes (`job.concurrency` at once) and never touch the database:
the calling thread claims, mints every grant, records every outcome and renews the
leases of the objects in flight. Transient failures (no connection, a timeout, 5xx,
429) are retried with backoff, with fresh grants (a single-use grant whose answer
was lost is spent); a 4xx fails the object. A carrier killed mid-object leaves its
lease to run out; the next run takes the object again, and first looks at the
destination: an object already there with the right digest is not written again.
"""

from __future__ import annotations

import hashlib
import heapq
import logging
import secrets
import threading
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import requests
from django.conf import settings
from django.utils import timezone

from portal.moves import receipts, services
from portal.moves.models import MoveJob, MoveObject, MoveTicket
from portal.tickets.grants import move_grant
from tenants.models import StorageLocation
from tenants.validators import origin_of

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024
CONNECT_TIMEOUT, READ_TIMEOUT = 10, 60
MAX_ERASE_PARTS = 50
NOTE_TYPE = "text/plain; charset=utf-8"  # what the browser writes notes as (static/js/report/notes.js)
USER_AGENT = "Dualkey-Move-Worker/1"


class Transient(Exception):
    """Worth trying again: no connection, a timeout, a 5xx or 429."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


class Permanent(Exception):
    """No retry can change it: a refusal (4xx), or the object is not what was planned."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def _refusal(status: int, code: str, message: str) -> Exception:
    kind = Transient if status >= 500 or status == 429 else Permanent
    return kind(code[:64], f"HTTP {status} {code}: {message}"[:300])


# --- the threads' part: HTTP only ----------------------------------------------------

_local = threading.local()


def _session() -> requests.Session:
    if getattr(_local, "session", None) is None:
        _local.session = requests.Session()
        _local.session.headers["User-Agent"] = USER_AGENT
    return _local.session


def sign(gatekeeper_url: str, grant: str, ops: list[dict]) -> dict:
    """The gatekeeper's whole answer ({request_id, results}); a refusal raised as
    Transient or Permanent. Never redirected: a grant goes to this gatekeeper only."""
    try:
        response = _session().post(f"{gatekeeper_url.rstrip('/')}/v1/sign", json={"ops": ops},
                                   headers={"Authorization": f"Bearer {grant}"},
                                   timeout=(CONNECT_TIMEOUT, READ_TIMEOUT), allow_redirects=False)
    except requests.RequestException as failure:
        raise Transient("gatekeeper_unreachable", f"the gatekeeper did not answer ({type(failure).__name__})")
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200 or not isinstance(body.get("results"), list):
        raise _refusal(response.status_code, str(body.get("error", "gatekeeper_refused")),
                       str(body.get("message", response.reason))[:200])
    return body


class _Throttle:
    def __init__(self, rate: int):
        self.rate, self.started, self.sent = rate, time.monotonic(), 0

    def __call__(self, n: int) -> None:
        if self.rate:
            self.sent += n
            ahead = self.sent / self.rate - (time.monotonic() - self.started)
            if ahead > 0:
                time.sleep(ahead)


class MultipartStream:
    """A presigned POST's multipart/form-data body whose file part is read from
    `source` (an iterator of chunks) as the body is sent: a file-like object with a
    length, so requests sends a Content-Length and no chunked encoding. Hashes
    what passes; refuses a source that ends early or runs long (so the POST is cut
    off, and S3 stores nothing)."""

    def __init__(self, fields: dict, source, size: int, progress=None, throttle: _Throttle | None = None):
        self.boundary = secrets.token_hex(16)
        head = b"".join(f'--{self.boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
                        + str(value).encode() + b"\r\n" for name, value in fields.items())
        head += (f'--{self.boundary}\r\nContent-Disposition: form-data; name="file"; filename="blob"\r\n'
                 "Content-Type: application/octet-stream\r\n\r\n").encode()
        self._tail = memoryview(f"\r\n--{self.boundary}--\r\n".encode())
        self._buffer, self._offset, self._source, self._size, self._seen = memoryview(head), 0, iter(source), size, 0
        self._length = len(head) + size + len(self._tail)
        self._done, self.sha256 = False, hashlib.sha256()
        self._progress, self._throttle = progress, throttle

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return self._length

    def _more(self) -> bool:
        """The next piece into the buffer (the file's next chunk, or the tail); False at the end."""
        if self._done:
            return False
        chunk = next(self._source, None)
        if chunk is None:
            if self._seen != self._size:
                raise Transient("source_short", f"the source sent {self._seen} of {self._size} bytes")
            self._buffer, self._offset, self._done = self._tail, 0, True
            return True
        self._seen += len(chunk)
        if self._seen > self._size:
            raise Permanent("changed_at_source", "its size at the source is not the manifest's")
        self.sha256.update(chunk)
        if self._progress:
            self._progress(len(chunk))
        if self._throttle:
            self._throttle(len(chunk))
        self._buffer, self._offset = memoryview(chunk), 0
        return True

    def read(self, n: int = -1) -> bytes:
        """Up to `n` bytes (the sender asks for its block size): a slice of the chunk
        in hand, never a copy of the rest of it."""
        while self._offset >= len(self._buffer):
            if not self._more():
                return b""
        end = len(self._buffer) if n is None or n < 0 else self._offset + n
        out = bytes(self._buffer[self._offset:end])
        self._offset += len(out)
        return out


def _open_get(url: str) -> requests.Response:
    try:
        response = _session().get(url, stream=True, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT), allow_redirects=False)
    except requests.RequestException as failure:
        raise Transient("storage_unreachable", f"storage did not answer ({type(failure).__name__})")
    if response.status_code != 200:
        status = response.status_code
        response.close()
        raise _refusal(status, "storage_refused" if status != 404 else "not_found",
                       "storage refused the download" if status != 404 else "no such object")
    return response


def _chunks(response: requests.Response):
    try:
        yield from response.iter_content(CHUNK)
    except requests.RequestException as failure:
        raise Transient("storage_unreachable", f"the download broke off ({type(failure).__name__})")


def _hash_of(url: str, size: int, progress=None) -> str:
    response = _open_get(url)
    with response:
        if response.headers.get("Content-Length") not in (None, str(size)):
            raise Permanent("size_differs", "its size is not the manifest's")
        digest, seen = hashlib.sha256(), 0
        for chunk in _chunks(response):
            digest.update(chunk)
            seen += len(chunk)
            if progress:
                progress(len(chunk))
        if seen != size:
            raise Transient("storage_short", f"the download ended after {seen} of {size} bytes")
    return digest.hexdigest()


@dataclass
class Work:
    """One step for one object (or one erasing request for one switched ticket), with
    the grants the calling thread minted for it."""

    kind: str  # "copy", "verify" or "erase"
    obj: MoveObject | None
    grants: dict
    look_first: bool = False  # a copy retried: is it at the destination already?
    tries: int = 0
    bytes_done: int = 0
    move: MoveTicket | None = None  # an erase's: the ticket, its keys still to erase, the answers so far
    keys: list = field(default_factory=list)
    parts: list = field(default_factory=list)
    started: object = None
    whole_prefix: bool | None = None  # an erase: the prefix at once (it holds only the moved keys)?

    @property
    def move_id(self) -> int:
        return self.move.pk if self.move is not None else self.obj.move_id

    @property
    def label(self) -> str:
        return self.obj.key if self.obj is not None else f"the source's copies of ticket {self.move.ticket.number}"


def carry(work: Work, source: StorageLocation, destination: StorageLocation, content_type: str) -> str:
    """Run one step (in a thread): the SHA-256 seen (at the source for a copy, at the
    destination for a verify); for an erase, the source gatekeeper's answer."""
    if work.kind == "erase":
        return _erase_step(work, source)
    obj = work.obj

    def progress(n):
        work.bytes_done += n

    if work.kind == "verify":
        [got] = sign(destination.gatekeeper_url, work.grants["dst_get"], [{"op": "get", "key": obj.key}])["results"]
        return _hash_of(_url_at(got, destination), obj.size, progress)
    if work.look_first:
        found = _already_there(work, source, destination)
        if found:
            return found
    [got] = sign(source.gatekeeper_url, work.grants["src_get"], [{"op": "get", "key": obj.key}])["results"]
    download = _open_get(_url_at(got, source))
    with download:
        if download.headers.get("Content-Length") != str(obj.size):
            raise Permanent("changed_at_source", "its size at the source is not the manifest's")
        [put] = sign(destination.gatekeeper_url, work.grants["dst_put"],
                     [{"op": "put", "key": obj.key, "size": obj.size, "content_type": content_type}])["results"]
        body = MultipartStream(put["fields"], _chunks(download), obj.size, progress,
                               _Throttle(settings.DUALKEY_MOVE_MAX_BYTES_PER_SECOND))
        try:
            answer = _session().post(_url_at(put, destination), data=body, headers={"Content-Type": body.content_type},
                                     timeout=(CONNECT_TIMEOUT, READ_TIMEOUT), allow_redirects=False)
        except requests.RequestException as failure:  # (the body's own Transient/Permanent pass through)
            raise Transient("storage_unreachable", f"the upload broke off ({type(failure).__name__})")
        if answer.status_code not in (200, 201, 204):
            raise _refusal(answer.status_code, "storage_refused", "the destination's storage refused the upload")
    return body.sha256.hexdigest()


def _erase_step(work: Work, source: StorageLocation) -> dict:
    """One erasing request at the source. The first lists the prefix: if it holds no
    current object but the moved ones, the whole prefix goes in one op (their old
    versions and delete markers with them); else key by key, only the moved keys
    (one listing each at the gatekeeper, much slower on a big bucket)."""
    prefix = work.move.ticket.prefix
    if work.whole_prefix is None:
        [listed] = sign(source.gatekeeper_url, work.grants["src_list"], [{"op": "list", "prefix": prefix}])["results"]
        work.whole_prefix = not listed["truncated"] and {o["key"] for o in listed["objects"]} <= set(work.keys)
    if work.whole_prefix:
        return sign(source.gatekeeper_url, work.grants["src_delete"], [{"op": "delete", "prefix": prefix}])
    return sign(source.gatekeeper_url, work.grants["src_delete"],
                [{"op": "delete", "key": key} for key in work.keys[:services.MAX_ERASE_OPS]])


def _url_at(result: dict, location: StorageLocation) -> str:
    """A presigned URL from `location`'s gatekeeper, if it is on the location's storage
    origin (as the agent's pin checks): bytes never go anywhere else."""
    url = result.get("url")
    if not isinstance(url, str) or (location.storage_origin and origin_of(url) != origin_of(location.storage_origin)):
        raise Permanent("wrong_storage_origin", "the gatekeeper signed a URL off the location's storage origin")
    return url


def _already_there(work: Work, source: StorageLocation, destination: StorageLocation) -> str:
    """A copy tried before (its carrier died, or its answer was lost) may have landed:
    if the destination holds the object with the digest expected, it is not written
    again. The digest expected is the manifest's; for a note, the source's."""
    obj = work.obj
    [got] = sign(destination.gatekeeper_url, work.grants["dst_get"], [{"op": "get", "key": obj.key}])["results"]
    try:
        there = _hash_of(_url_at(got, destination), obj.size)
    except Permanent:  # not there (404), or not this size: copy it
        return ""
    expected = obj.sha256
    if not expected:
        [src] = sign(source.gatekeeper_url, work.grants["src_get"], [{"op": "get", "key": obj.key}])["results"]
        expected = _hash_of(_url_at(src, source), obj.size)
    return there if there == expected else ""


# --- the calling thread's part: the database and the grants ----------------------------

@dataclass
class Stats:
    copied: int = 0
    skipped: int = 0  # found already at the destination on a retry
    verified: int = 0
    switched: int = 0
    erased: int = 0
    failed: int = 0
    retries: int = 0
    bytes_moving: int = 0  # bytes of the steps in flight, so far


class Run:
    """One run of a job by one carrier. `run()` returns when nothing is left for it:
    the job finished, paused or cancelled, or its last objects are another carrier's."""

    def __init__(self, job: MoveJob, *, carrier: str | None = None, on_progress=None, progress_every: float = 0.5,
                 concurrency: int | None = None):
        self.job = job
        self.concurrency = concurrency or job.concurrency
        self.carrier = carrier or f"worker:{uuid.uuid4().hex[:16]}"
        self.source, self.destination = job.source, job.destination
        self.who = services.worker_carrier(job)
        self.stats = Stats()
        self.on_progress, self.progress_every = on_progress, progress_every
        self._tickets: dict[int, object] = {}
        self._types: dict[str, str] = {}
        self._in_flight: dict[Future, Work] = {}
        self._later: list[tuple[float, int, Work]] = []
        self._sequence = 0

    # grants ------------------------------------------------------------------------

    def _ticket(self, obj: MoveObject):
        if obj.move_id not in self._tickets:
            move = MoveTicket.objects.select_related("ticket", "ticket__tenant").get(pk=obj.move_id)
            self._tickets[obj.move_id] = move.ticket
            for f in move.ticket.files.all():
                self._types[f.key] = f.content_type
        return self._tickets[obj.move_id]

    def _grant(self, obj: MoveObject, location: StorageLocation, op: str) -> str:
        return move_grant(self._ticket(obj), location, self.who, (op,)).token

    def _grants_for(self, work: Work) -> dict:
        if work.kind == "erase":
            grants = {"src_delete": move_grant(work.move.ticket, self.source, self.who, ("delete",)).token}
            if work.whole_prefix is None:
                grants["src_list"] = move_grant(work.move.ticket, self.source, self.who, ("list",)).token
            return grants
        obj = work.obj
        if work.kind == "verify":
            return {"dst_get": self._grant(obj, self.destination, "get")}
        grants = {"src_get": self._grant(obj, self.source, "get"), "dst_put": self._grant(obj, self.destination, "put")}
        if work.look_first:
            grants["dst_get"] = self._grant(obj, self.destination, "get")
        return grants

    # the loop ------------------------------------------------------------------------

    def run(self) -> Stats:
        limit = max(1, self.concurrency)
        self.pool = None
        self._sweep()
        last = 0.0
        with ThreadPoolExecutor(max_workers=limit, thread_name_prefix="move") as pool:
            self.pool = pool
            for obj in self._copied_objects():
                self._submit(Work("verify", obj, {}))
            while True:
                self._job_refresh()
                room = limit - len(self._in_flight) - len(self._later)
                if room > 0 and self.job.state == MoveJob.State.RUNNING:
                    carrying = {w.obj.pk for w in self._works() if w.obj is not None}
                    for obj in services.claim(self.job, self.carrier, room, exclude=carrying):
                        self._submit(Work("copy", obj, {}, look_first=obj.attempts > 1))
                self._due()
                if not self._in_flight and not self._later:
                    if not self._others_hold_some():
                        break
                    time.sleep(min(1.0, services.lease().total_seconds() / 4))
                    continue
                if not self._in_flight:  # only retries waiting out their backoff
                    time.sleep(min(0.2, max(0.01, self._later[0][0] - time.monotonic())))
                done, _ = wait(list(self._in_flight), timeout=0.2, return_when=FIRST_COMPLETED)
                for future in done:
                    self._finished(future, self._in_flight.pop(future))
                self._renew()
                if self.on_progress and time.monotonic() - last >= self.progress_every:
                    last = time.monotonic()
                    self._report()
        self.pool = None
        self._sweep()
        services.settle(self.job)
        self._job_refresh()
        self._report()
        return self.stats

    def _report(self):
        if self.on_progress:
            self.stats.bytes_moving = sum(w.bytes_done for w in self._in_flight.values())
            self.on_progress(self.job, self.stats)

    def _job_refresh(self):
        self.job.refresh_from_db(fields=["state", "finished_at", "state_changed_at"])

    def _others_hold_some(self) -> bool:
        """Pending objects of pending tickets, leased by a carrier that may be alive (or
        whose lease has not run out yet): wait for them, while the job runs."""
        if self.job.state != MoveJob.State.RUNNING:
            return False
        return MoveObject.objects.filter(move__job=self.job, move__state=MoveTicket.State.PENDING,
                                         state=MoveObject.State.PENDING).exists()

    def _copied_objects(self) -> list[MoveObject]:
        """Copied but never verified (a carrier died in between): verify them now."""
        return list(MoveObject.objects.filter(move__job=self.job, state=MoveObject.State.COPIED))

    def _works(self) -> list[Work]:
        return list(self._in_flight.values()) + [w for _, _, w in self._later]

    def _submit(self, work: Work) -> None:
        work.bytes_done = 0
        try:
            work.grants = self._grants_for(work)
        except Exception as failure:  # noqa: BLE001  (a grant the portal cannot mint: the object fails)
            log.warning("move %s: no grant for %s: %s", self.job.pk, work.label, type(failure).__name__)
            self._give_up(work, Permanent("no_grant", "the portal could not mint a grant for it"))
            return
        if work.kind == "erase":
            log.info("move %s: erasing %s (%d keys)", self.job.pk, work.label, len(work.keys))
            content_type = ""
        else:
            content_type = self._types.get(work.obj.key, NOTE_TYPE)
            log.info("move %s: %s %s (%d bytes)", self.job.pk, "copying" if work.kind == "copy" else "verifying",
                     work.obj.key, work.obj.size)
        self._in_flight[self.pool.submit(carry, work, self.source, self.destination, content_type)] = work

    def _due(self) -> None:
        now = time.monotonic()
        while self._later and self._later[0][0] <= now:
            _, _, work = heapq.heappop(self._later)
            self._submit(work)

    def _renew(self) -> None:
        held = [w.obj for w in self._in_flight.values() if w.kind == "copy"]
        held += [w.obj for _, _, w in self._later if w.kind == "copy"]
        now = time.monotonic()
        if held and now - getattr(self, "_renewed", 0.0) >= services.lease().total_seconds() / 3:
            self._renewed = now
            services.renew(held, self.carrier)

    def _finished(self, future: Future, work: Work) -> None:
        try:
            digest = future.result()
        except Transient as failure:
            work.tries += 1
            if work.tries <= settings.DUALKEY_MOVE_RETRIES:
                self.stats.retries += 1
                delay = settings.DUALKEY_MOVE_RETRY_SECONDS * 2 ** (work.tries - 1)
                log.info("move %s: %s: %s; again in %.1fs", self.job.pk, work.label, failure.code, delay)
                work.look_first = work.kind == "copy"
                self._sequence += 1
                heapq.heappush(self._later, (time.monotonic() + delay, self._sequence, work))
                return
            self._give_up(work, failure, permanent=False)
            return
        except Permanent as failure:
            self._give_up(work, failure)
            return
        except Exception as failure:  # noqa: BLE001  (a bug of ours: the object fails, named; the job goes on)
            log.exception("move %s: carrying %s failed", self.job.pk, work.label)
            self._give_up(work, Permanent("worker_error", f"the worker failed ({type(failure).__name__})"))
            return
        if work.kind == "erase":
            self._erased_part(work, digest)
            return
        if work.kind == "copy":
            obj = services.copied(work.obj, digest)
            if obj.state == MoveObject.State.COPIED:
                self.stats.copied += 1
                self._submit(Work("verify", obj, {}))
            else:
                self._after_failure(obj)
            return
        obj = services.verified(work.obj, digest)
        if obj.state == MoveObject.State.VERIFIED:
            self.stats.verified += 1
            self._settle_ticket(obj.move_id)
        else:
            self._after_failure(obj)

    def _give_up(self, work: Work, failure, *, permanent: bool = True) -> None:
        log.info("move %s: %s failed: %s", self.job.pk, work.label, failure.code)
        if work.kind == "erase":
            return  # the ticket stays switched, its erasure due: the next run tries again
        if work.kind == "copy":
            obj = services.failed(work.obj, failure.code, failure.message, permanent=permanent)
            if obj.state == MoveObject.State.FAILED:
                self._after_failure(obj)
            return
        # A verify that keeps failing: the object stays copied, verified by a later run.
        if permanent:
            obj = services.verify_refused(work.obj, failure.code, failure.message)
            if obj.state == MoveObject.State.FAILED:
                self._after_failure(obj)

    def _after_failure(self, obj: MoveObject) -> None:
        self.stats.failed += 1
        self._erase_failed_copies(obj.move_id)

    # a ticket's end ---------------------------------------------------------------------

    def _settle_ticket(self, move_id: int) -> None:
        move = MoveTicket.objects.select_related("ticket", "job").get(pk=move_id)
        if move.state == MoveTicket.State.PENDING:
            try:
                if not services.switch(move):
                    return
            except services.MoveRefused as refused:
                log.warning("move %s: ticket %s not switched: %s", self.job.pk, move.ticket.number, refused.code)
                return
            self.stats.switched += 1
            move.refresh_from_db()
        if move.state == MoveTicket.State.SWITCHED:
            if getattr(self, "pool", None) is None:
                self._erase_source(move)
            elif self._distinct() and not any(w.kind == "erase" and w.move_id == move.pk for w in self._works()):
                # Only what was moved (and verified): never anything the plan did not list.
                keys = sorted(move.move_objects.values_list("key", flat=True))
                self._submit(Work("erase", None, {}, move=move, keys=keys, started=timezone.now()))

    def _erased_part(self, work: Work, body: dict) -> None:
        """One answer of the source's gatekeeper to an erase: go on with what it left, or
        finish the ticket (its receipt, then services.source_erased)."""
        results = body["results"]
        work.parts.append({"request_id": body["request_id"],
                           "objects": [o for r in results for o in r.get("objects", [])],
                           "failed": [f for r in results for f in r.get("failed", [])]})
        if work.parts[-1]["failed"]:
            log.warning("move %s: storage refused to erase some of %s", self.job.pk, work.label)
            return
        if work.whole_prefix:
            work.keys = work.keys if results[0].get("truncated") else []
        else:
            work.keys = [r["key"] for r in results if r.get("truncated")] + work.keys[services.MAX_ERASE_OPS:]
        if work.keys:
            if len(work.parts) < MAX_ERASE_PARTS:
                work.tries = 0
                self._submit(work)
            return
        self._source_done(work.move, work.parts, work.started)

    def _sweep(self) -> None:
        """What a run that died left half done: tickets verified but not switched,
        switched but not erased, failed with copies left at the destination."""
        for move in MoveTicket.objects.filter(job=self.job, state__in=[MoveTicket.State.PENDING,
                                                                        MoveTicket.State.SWITCHED]):
            if move.state == MoveTicket.State.SWITCHED or not move.move_objects.exclude(
                    state=MoveObject.State.VERIFIED).exists():
                self._settle_ticket(move.pk)
        for move in MoveTicket.objects.filter(job=self.job, state=MoveTicket.State.FAILED, receipt_name=""):
            self._erase_failed_copies(move.pk)

    def _erase(self, move: MoveTicket, location: StorageLocation, keys: list[str] | None = None
               ) -> tuple[list[dict], bool]:
        """The gatekeeper's delete op at `location` (every version and delete marker):
        of exactly `keys`, or of the ticket's whole prefix; again until it says nothing
        is left (each request takes a fresh single-use grant)."""
        parts, pending = [], None if keys is None else sorted(keys)
        for _ in range(MAX_ERASE_PARTS):
            ops = ([{"op": "delete", "prefix": move.ticket.prefix}] if pending is None
                   else [{"op": "delete", "key": key} for key in pending[:services.MAX_ERASE_OPS]])
            body = self._delete(move, location, ops)
            if body is None:
                return parts, False
            results = body["results"]
            parts.append({"request_id": body["request_id"],
                          "objects": [o for r in results for o in r.get("objects", [])],
                          "failed": [f for r in results for f in r.get("failed", [])]})
            if parts[-1]["failed"]:
                return parts, False
            if pending is None:
                if not results[0].get("truncated"):
                    return parts, True
                continue
            pending = [r["key"] for r in results if r.get("truncated")] + pending[services.MAX_ERASE_OPS:]
            if not pending:
                return parts, True
        return parts, False

    def _delete(self, move: MoveTicket, location: StorageLocation, ops: list[dict]) -> dict | None:
        """One erasing request, retried on a transient failure; None if it did not go
        through (the erasure stays due: the next run tries again)."""
        why = ""
        for attempt in range(settings.DUALKEY_MOVE_RETRIES + 1):
            grant = move_grant(move.ticket, location, self.who, ("delete",)).token
            try:
                return sign(location.gatekeeper_url, grant, ops)
            except Transient as failure:
                why = failure.code
                if attempt < settings.DUALKEY_MOVE_RETRIES:
                    time.sleep(settings.DUALKEY_MOVE_RETRY_SECONDS * 2 ** attempt)
            except Permanent as refused:
                why = refused.code
                break
        log.warning("move %s: erasing ticket %s at %s did not finish (%s)", self.job.pk, move.ticket.number,
                    location.gatekeeper_id, why)
        return None

    def _distinct(self) -> bool:
        """Never erase where the copies would be the originals (services.check_distinct)."""
        try:
            services.check_distinct(self.source, self.destination)
        except services.MoveRefused as refused:
            log.error("move %s: nothing erased: %s", self.job.pk, refused.code)
            return False
        return True

    def _erase_source(self, move: MoveTicket) -> None:
        if not self._distinct():
            return
        started = timezone.now()
        # Only what was moved (and verified): never anything the plan did not list.
        keys = set(move.move_objects.values_list("key", flat=True))
        parts, done = self._erase(move, self.source, sorted(keys))
        if done:  # else the ticket stays switched, its erasure due: the next run tries again
            self._source_done(move, parts, started)

    def _source_done(self, move: MoveTicket, parts: list[dict], started) -> None:
        keys = set(move.move_objects.values_list("key", flat=True))
        name, digest = receipts.store(move, receipts.build(move, self.source, parts, self.who, "moved", started))
        # Every version of each key is gone (the gatekeeper said so, to us directly): a
        # key its answers do not list was erased by an earlier, interrupted run.
        services.source_erased(move, keys, name, digest)
        self.stats.erased += 1

    def _erase_failed_copies(self, move_id: int) -> None:
        move = MoveTicket.objects.select_related("ticket", "job").get(pk=move_id)
        if move.state != MoveTicket.State.FAILED or move.receipt_name:
            return
        if any(w.move_id == move_id for w in self._works()):
            return  # after its last copy in flight lands (the final sweep)
        if move.ticket.location_id == self.destination.pk or not self._distinct():
            return  # never: the ticket lives there
        started = timezone.now()
        parts, done = self._erase(move, self.destination)
        if not done:
            return
        receipt = receipts.build(move, self.destination, parts, self.who, "move failed: the copies at the destination",
                                 started)
        services.failed_copies_erased(move, *receipts.store(move, receipt, "-destination"))


def run_job(job_id, *, carrier: str | None = None, on_progress=None, progress_every: float = 0.5,
            concurrency: int | None = None) -> Stats:
    """Run a job in this process until nothing is left for it (the task's body, and
    `manage.py move_tickets`')."""
    # (No close_old_connections here: Celery's Django fixup closes stale connections
    # before every task, and `manage.py move_tickets` is a fresh process.)
    job = MoveJob.objects.select_related("source", "destination", "tenant").get(pk=job_id)
    if job.mode != MoveJob.Mode.WORKER:
        raise services.MoveRefused("not_worker", "the vendor's worker carries only moves from vendor-hosted storage",
                                   409)
    return Run(job, carrier=carrier, on_progress=on_progress, progress_every=progress_every,
               concurrency=concurrency).run()
