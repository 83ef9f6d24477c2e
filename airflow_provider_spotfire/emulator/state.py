"""Thread-safe in-memory state of the Spotfire Server emulator.

One ``threading.RLock`` (``EmulatorState.lock``) guards everything. Uploaded bytes never live in memory:
chunks and library item contents are files in a per-instance temporary directory. ``reset()`` restores the
seeded state (and the configuration the emulator was created with).
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import heapq
import itertools
import os
import random
import secrets
import shutil
import tempfile
import threading
import time
import uuid
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airflow_provider_spotfire.emulator.config import EmulatorConfig

PROFILES = ("other", "web", "native", "user_agent")
PUBLIC_PROFILES = ("native", "user_agent")
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "none")


def iso(ts: float | None) -> str | None:
    """ISO-8601 UTC timestamp with millisecond precision and a ``Z`` suffix (``None`` stays ``None``)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_id() -> str:
    """A fresh lower-case GUID."""
    return str(uuid.uuid4())


def normalize_folder_path(path: str) -> str | None:
    """``/A/B/`` → ``/A/B``; ``/`` stays ``/``; ``None`` for relative paths or empty path parts."""
    if not isinstance(path, str) or not path.startswith("/"):
        return None
    stripped = path.strip("/")
    if not stripped:
        return "/"
    parts = stripped.split("/")
    if any(p.strip() == "" for p in parts):
        return None
    return "/" + "/".join(parts)


def join_path(parent: str, title: str) -> str:
    """Library path of ``title`` inside folder ``parent``."""
    return f"/{title}" if parent == "/" else f"{parent}/{title}"


def split_path(path: str) -> tuple[str, str] | None:
    """``/A/B/title`` → (``/A/B``, ``title``); ``None`` for invalid or root paths."""
    norm = normalize_folder_path(path)
    if norm is None or norm == "/":
        return None
    parent, _, title = norm.rpartition("/")
    return (parent or "/"), title


@dataclass
class ApiClient:
    """A registered API client (like ``register-api-client``); it is also a Spotfire user."""

    client_id: str
    client_secret: str | None
    profile: str
    grant_types: list[str]
    scopes: list[str]
    token_endpoint_auth_methods: list[str]
    redirect_uris: list[str]
    user_id: str
    display_name: str
    seeded: bool = False

    @property
    def is_public(self) -> bool:
        """Public clients have no secret and must use PKCE."""
        return self.client_secret is None

    def to_dict(self, include_secret: bool = False) -> dict[str, Any]:
        """JSON view (the secret only on request)."""
        d = {
            "client_id": self.client_id,
            "profile": self.profile,
            "grant_types": self.grant_types,
            "scopes": self.scopes,
            "token_endpoint_auth_methods": self.token_endpoint_auth_methods,
            "redirect_uris": self.redirect_uris,
            "user_id": self.user_id,
            "display_name": self.display_name,
            "public": self.is_public,
        }
        if include_secret:
            d["client_secret"] = self.client_secret
        return d


@dataclass
class User:
    """A Spotfire user (API clients appear as users too, with ``client_id`` set)."""

    user_id: str
    name: str
    display_name: str
    groups: list[str]
    client_id: str | None = None


@dataclass
class Group:
    """A Spotfire group; ``member_of`` lists the groups this group is a direct member of."""

    group_id: str
    name: str
    member_of: list[str]


@dataclass
class Token:
    """An opaque access or refresh token."""

    value: str
    kind: str  # "access" | "refresh"
    client_id: str
    user_id: str
    scopes: list[str]
    issued_at: float
    expires_at: float | None
    grant_id: str
    revoked: bool = False
    rotated: bool = False  # a refresh token replaced by rotation (used once)

    def valid(self, now: float) -> bool:
        """Not revoked and not expired."""
        return not self.revoked and (self.expires_at is None or now < self.expires_at)


@dataclass
class AuthCode:
    """An authorization code issued by the authorization endpoint."""

    code: str
    client_id: str
    redirect_uri: str
    redirect_uri_in_request: bool
    scopes: list[str]
    user_id: str
    code_challenge: str | None
    code_challenge_method: str | None
    expires_at: float
    grant_id: str
    used: bool = False


@dataclass
class Folder:
    """A library folder with read/write principals (user or group ids)."""

    folder_id: str
    path: str
    read: set[str]
    write: set[str]
    created: float


@dataclass
class LibraryItem:
    """A library item whose content lives in a file."""

    item_id: str
    parent_path: str
    title: str
    type: str
    size: int
    sha256: str
    content_paths: list[str]
    created: float
    modified: float
    description: str = ""
    keywords: list[str] = field(default_factory=list)
    created_by: str | None = None
    as_behaviour: dict[str, Any] | None = None

    @property
    def path(self) -> str:
        """Full library path."""
        return join_path(self.parent_path, self.title)

    def to_dict(self) -> dict[str, Any]:
        """JSON view used by the inspection endpoints."""
        d = {
            "id": self.item_id,
            "path": self.path,
            "parentPath": self.parent_path,
            "title": self.title,
            "type": self.type,
            "size": self.size,
            "sha256": self.sha256,
            "description": self.description,
            "keywords": self.keywords,
            "created": iso(self.created),
            "modified": iso(self.modified),
            "createdBy": self.created_by,
        }
        if self.as_behaviour is not None:
            d["emulatorBehaviour"] = self.as_behaviour
        return d


@dataclass
class Chunk:
    """One stored chunk of an upload job."""

    number: int
    path: str
    size: int
    first_bytes: bytes


@dataclass
class UploadJob:
    """A library upload job."""

    job_id: str
    client_id: str
    user_id: str
    parent_path: str
    title: str
    item_type: str
    description: str | None
    keywords: list[str] | None
    number_of_bytes: int | None
    number_of_chunks: int | None
    overwrite: bool
    created_at: float
    job_dir: str
    status: str = "open"  # open | finished | cancelled | failed
    chunks: dict[int, Chunk] = field(default_factory=dict)
    finished_at: float | None = None
    cancelled_at: float | None = None
    failure: dict[str, str] | None = None
    in_flight: int = 0
    finishing: bool = False
    item_id: str | None = None
    # sha256 of the chunks received so far, kept while chunks arrive one at a time in ascending order
    running_sha: Any = field(default_factory=hashlib.sha256)
    running_valid: bool = True
    status_polls: int = 0  # GET status requests
    cancel_requests: int = 0  # DELETE requests

    @property
    def bytes_received(self) -> int:
        """Sum of the sizes of the stored chunks."""
        return sum(c.size for c in self.chunks.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON view used by the inspection endpoints."""
        return {
            "jobId": self.job_id,
            "clientId": self.client_id,
            "userId": self.user_id,
            "path": join_path(self.parent_path, self.title),
            "type": self.item_type,
            "status": self.status,
            "numberOfBytes": self.number_of_bytes,
            "numberOfChunks": self.number_of_chunks,
            "overwriteIfExists": self.overwrite,
            "chunks": {str(n): {"size": c.size} for n, c in sorted(self.chunks.items())},
            "uploadedChunks": sorted(self.chunks),
            "bytesReceived": self.bytes_received,
            "createdAt": iso(self.created_at),
            "finishedAt": iso(self.finished_at),
            "cancelledAt": iso(self.cancelled_at),
            "failure": self.failure,
            "itemId": self.item_id,
            "status_polls": self.status_polls,
            "cancel_requests": self.cancel_requests,
        }

    def summary(self) -> dict[str, Any]:
        """One row of ``GET /_emulator/library/jobs``."""
        return {
            "id": self.job_id,
            "state": self.status,
            "path": join_path(self.parent_path, self.title),
            "client_id": self.client_id,
            "chunks": len(self.chunks),
            "bytes_received": self.bytes_received,
            "status_polls": self.status_polls,
            "cancel_requests": self.cancel_requests,
            "created_at": iso(self.created_at),
            "finished_at": iso(self.finished_at),
            "cancelled_at": iso(self.cancelled_at),
        }


# Automation Services status codes
NOT_SET, QUEUED, IN_PROGRESS, FINISHED, FAILED, MISSING, BUSY, CANCELED = (
    "NotSet",
    "Queued",
    "InProgress",
    "Finished",
    "Failed",
    "Missing",
    "Busy",
    "Canceled",
)

DEFAULT_MESSAGES = {
    NOT_SET: "",
    QUEUED: "The job is queued.",
    IN_PROGRESS: "The job is in progress.",
    FINISHED: "The job finished successfully.",
    FAILED: "The job failed.",
    MISSING: "The job is missing; it may have been removed from the job queue.",
    BUSY: "The server is busy, try again later.",
    CANCELED: "The job was aborted.",
}


@dataclass
class AsJob:
    """An Automation Services job; its status is computed lazily from timestamps."""

    job_id: str
    client_id: str
    source_kind: str  # library-path | library-id | xml
    source: str
    created_at: float
    queue_seconds: float
    run_seconds: float
    outcome: str
    outcome_message: str | None
    starts: int
    item_id: str | None = None
    path_param: str | None = None
    immediate: tuple[str, str] | None = None  # (status, message) of jobs that fail at start
    aborted_at: float | None = None
    abort_reason: str | None = None
    forgotten_at: float | None = None
    status_polls: int = 0  # GET status requests
    abort_requests: int = 0  # POST abort requests

    @property
    def planned_end(self) -> float:
        """When the job reaches its outcome unless aborted or forgotten first."""
        return self.created_at + self.queue_seconds + self.run_seconds

    def started_at(self, now: float) -> float | None:
        """When the job went InProgress (``None`` while queued, or if it never ran)."""
        for status, ts in self.history(now):
            if status == IN_PROGRESS:
                return ts
        return None

    def finished_at(self, now: float) -> float | None:
        """When the job reached a final status (``None`` while queued or in progress)."""
        hist = self.history(now)
        if hist and hist[-1][0] not in (QUEUED, IN_PROGRESS):
            return hist[-1][1]
        return None

    def summary(self, now: float) -> dict[str, Any]:
        """One row of ``GET /_emulator/automation/jobs``."""
        return {
            "id": self.job_id,
            "state": self.status(now)[0],
            "client_id": self.client_id,
            "status_polls": self.status_polls,
            "abort_requests": self.abort_requests,
            "queue_seconds": self.queue_seconds,
            "run_seconds": self.run_seconds,
            "created_at": iso(self.created_at),
            "started_at": iso(self.started_at(now)),
            "finished_at": iso(self.finished_at(now)),
        }

    def history(self, now: float) -> list[tuple[str, float]]:
        """Status transitions (status, timestamp) that have happened up to ``now``."""
        if self.immediate is not None:
            hist = [(self.immediate[0], self.created_at)]
        else:
            planned = [
                (QUEUED, self.created_at),
                (IN_PROGRESS, self.created_at + self.queue_seconds),
                (self.outcome, self.created_at + self.queue_seconds + self.run_seconds),
            ]
            hist = []
            for status, ts in planned:
                if ts > now or (self.aborted_at is not None and ts > self.aborted_at):
                    break
                hist.append((status, ts))
            if self.aborted_at is not None and self.aborted_at <= now:
                hist.append((CANCELED, self.aborted_at))
        if self.forgotten_at is not None and self.forgotten_at <= now:
            hist.append((MISSING, self.forgotten_at))
        return hist

    def status(self, now: float) -> tuple[str, str]:
        """(StatusCode, Message) at ``now``."""
        hist = self.history(now)
        code = hist[-1][0] if hist else QUEUED
        if code == MISSING:
            return MISSING, DEFAULT_MESSAGES[MISSING]
        if self.immediate is not None:
            return self.immediate
        if code == CANCELED:
            msg = DEFAULT_MESSAGES[CANCELED]
            if self.abort_reason:
                msg = f"{msg} Reason: {self.abort_reason}"
            return CANCELED, msg
        if len(hist) >= 3 and self.outcome_message is not None:
            return code, self.outcome_message
        return code, DEFAULT_MESSAGES[code]

    def running(self, now: float) -> bool:
        """Queued or InProgress (counts against ``as_max_concurrent_jobs``)."""
        return self.status(now)[0] in (QUEUED, IN_PROGRESS)

    def to_dict(self, now: float) -> dict[str, Any]:
        """JSON view used by the inspection endpoints."""
        code, msg = self.status(now)
        return {
            "jobId": self.job_id,
            "clientId": self.client_id,
            "status": code,
            "message": msg,
            "source": {"kind": self.source_kind, "value": self.source, "path": self.path_param},
            "itemId": self.item_id,
            "starts": self.starts,
            "queueSeconds": self.queue_seconds,
            "runSeconds": self.run_seconds,
            "outcome": self.outcome,
            "history": [{"status": s, "at": iso(t)} for s, t in self.history(now)],
            "createdAt": iso(self.created_at),
            "abortedAt": iso(self.aborted_at),
            "abortReason": self.abort_reason,
            "forgottenAt": iso(self.forgotten_at),
            "startedAt": iso(self.started_at(now)),
            "finishedAt": iso(self.finished_at(now)),
            "status_polls": self.status_polls,
            "abort_requests": self.abort_requests,
        }


class RunningJobs:
    """Ids of Queued/InProgress AS jobs keyed to their planned end, pruned lazily from a heap.

    Counting is amortised O(log n) per job over its life instead of a scan of all jobs per start; it
    relies on the emulator clock never going backwards (``advance_clock`` only moves it forward).
    """

    def __init__(self) -> None:
        self._ends: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []

    def add(self, job_id: str, end: float) -> None:
        """Track a job that runs until ``end``."""
        self._ends[job_id] = end
        heapq.heappush(self._heap, (end, job_id))

    def discard(self, job_id: str) -> None:
        """Stop tracking a job (aborted or forgotten before its end)."""
        self._ends.pop(job_id, None)

    def count(self, now: float) -> int:
        """Jobs still running at ``now``."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            end, job_id = heapq.heappop(heap)
            if self._ends.get(job_id) == end:
                del self._ends[job_id]
        return len(self._ends)


class EmulatorState:
    """All mutable emulator state behind one lock, plus the files of uploads and library items."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.lock = threading.RLock()
        self.initial_config: EmulatorConfig = (config or EmulatorConfig()).model_copy(deep=True)
        self.config: EmulatorConfig = self.initial_config.model_copy(deep=True)
        base_parent = self.config.data_dir
        if base_parent:
            os.makedirs(base_parent, exist_ok=True)
        self.base_dir = tempfile.mkdtemp(prefix="spotfire-emulator-", dir=base_parent)
        self._finalizer = weakref.finalize(self, shutil.rmtree, self.base_dir, ignore_errors=True)
        self._generation = itertools.count()
        self.gen_dir = ""
        self.clock_offset = 0.0
        self.frozen_at: float | None = None
        self._init_empty()
        self.reset(restore_config=False)

    # --- lifecycle
    def _init_empty(self) -> None:
        self.clients: dict[str, ApiClient] = {}
        self.users: dict[str, User] = {}
        self.groups: dict[str, Group] = {}
        self.tokens: dict[str, Token] = {}
        self.auth_codes: dict[str, AuthCode] = {}
        self.folders: dict[str, Folder] = {}
        self.items: dict[str, LibraryItem] = {}
        self.upload_jobs: dict[str, UploadJob] = {}
        self.as_jobs: dict[str, AsJob] = {}
        self.as_running = RunningJobs()
        self.as_rng = random.Random(self.config.as_duration_seed)
        self.licenses: dict[str, dict[str, Any]] = {}
        self.assignments: dict[str, dict[str, list[str]]] = {}
        self.request_log: collections.deque[dict[str, Any]] = collections.deque(
            maxlen=self.config.request_log_size
        )
        self.request_seq = itertools.count(1)
        self.counters: dict[str, Any] = {
            "token_requests": {},
            "tokens_issued": {},
            "faults_injected": {"503": 0, "429": 0, "drop_before": 0, "drop_after": 0, "latency": 0},
            "as_starts": 0,
            "as_starts_by_client": {},
            "as_starts_by_source": {},
            "api_requests": 0,
            "uploads_finished": 0,
            "uploads_failed": 0,
            "refresh_requests": 0,
            "reuse_detected": 0,
            "grants_revoked": 0,
        }
        self.fault_script: collections.deque[dict[str, Any]] = collections.deque()
        self.fault_rng = random.Random(self.config.fault_seed)

    def reset(self, restore_config: bool = True) -> None:
        """Restore the seeded state; by default also the configuration the emulator was created with."""
        from airflow_provider_spotfire.emulator import seed

        with self.lock:
            if restore_config:
                self.config = self.initial_config.model_copy(deep=True)
            old_gen = self.gen_dir
            self.gen_dir = os.path.join(self.base_dir, f"gen-{next(self._generation)}")
            os.makedirs(os.path.join(self.gen_dir, "items"))
            os.makedirs(os.path.join(self.gen_dir, "jobs"))
            self.clock_offset = 0.0
            self.frozen_at = None
            self._init_empty()
            seed.populate(self)
        if old_gen:
            shutil.rmtree(old_gen, ignore_errors=True)

    def close(self) -> None:
        """Delete all files of this emulator instance."""
        self._finalizer()

    def set_config(self, patch: dict[str, Any]) -> EmulatorConfig:
        """Validate and apply a runtime configuration patch (raises ``ValueError``)."""
        with self.lock:
            new = self.config.patched(**patch)
            if "fault_seed" in patch:
                self.fault_rng = random.Random(new.fault_seed)
            if "as_duration_seed" in patch:
                self.as_rng = random.Random(new.as_duration_seed)
            if new.request_log_size != self.config.request_log_size:
                self.request_log = collections.deque(self.request_log, maxlen=new.request_log_size)
            self.config = new
            return new

    # --- time
    def now(self) -> float:
        """Emulator wall clock: real (or frozen) time plus the offset set by ``advance_clock``."""
        base = self.frozen_at if self.frozen_at is not None else time.time()
        return base + self.clock_offset

    def freeze_clock(self, frozen: bool = True) -> None:
        """Stop (or restart) the emulator clock; only ``advance_clock`` moves a frozen clock."""
        with self.lock:
            if frozen and self.frozen_at is None:
                self.frozen_at = time.time()
            elif not frozen and self.frozen_at is not None:
                self.clock_offset += self.frozen_at - time.time()
                self.frozen_at = None

    def advance_clock(self, seconds: float) -> float:
        """Move the emulator clock forward (token expiry, AS job progress)."""
        with self.lock:
            self.clock_offset += seconds
            return self.clock_offset

    # --- counters / log
    def count(self, name: str, key: str | None = None, n: int = 1) -> None:
        """Increment a counter (or a keyed sub-counter)."""
        with self.lock:
            if key is None:
                self.counters[name] = self.counters.get(name, 0) + n
            else:
                sub = self.counters.setdefault(name, {})
                sub[key] = sub.get(key, 0) + n

    def log_request(self, entry: dict[str, Any]) -> None:
        """Append one entry to the bounded request log."""
        with self.lock:
            entry["seq"] = next(self.request_seq)
            self.request_log.append(entry)

    # --- principals
    def register_client(
        self,
        client_id: str,
        client_secret: str | None = None,
        profile: str = "other",
        scopes: list[str] | None = None,
        grant_types: list[str] | None = None,
        token_endpoint_auth_methods: list[str] | None = None,
        redirect_uris: list[str] | None = None,
        groups: list[str] | None = None,
        user_id: str | None = None,
        display_name: str | None = None,
        seeded: bool = False,
    ) -> ApiClient:
        """Register an API client, enforcing the profile rules of the spec (raises ``ValueError``)."""
        from airflow_provider_spotfire.emulator.seed import ALL_SCOPES

        if not client_id or not isinstance(client_id, str):
            raise ValueError("client_id is required")
        if profile not in PROFILES:
            raise ValueError(f"profile must be one of {', '.join(PROFILES)}")
        public = profile in PUBLIC_PROFILES
        if grant_types is None:
            grant_types = (
                ["client_credentials"] if profile == "other" else ["authorization_code", "refresh_token"]
            )
        allowed = {"client_credentials"} if profile == "other" else {"authorization_code", "refresh_token"}
        bad = [g for g in grant_types if g not in allowed]
        if bad or not grant_types:
            raise ValueError(
                f"profile {profile!r} can only use the grant types {sorted(allowed)} (got {grant_types})"
            )
        scopes = list(scopes if scopes is not None else ALL_SCOPES[:-1])
        unknown = [s for s in scopes if s not in ALL_SCOPES]
        if unknown:
            raise ValueError(f"unknown scopes: {unknown}")
        if public:
            if client_secret is not None:
                raise ValueError(f"no client credentials are issued to {profile} clients")
            methods = ["none"]
        else:
            if client_secret is None:
                client_secret = secrets.token_urlsafe(24)
            methods = list(token_endpoint_auth_methods or ["client_secret_basic"])
            if any(m not in AUTH_METHODS[:2] for m in methods):
                raise ValueError(
                    "token_endpoint_auth_methods must be client_secret_basic and/or client_secret_post"
                )
        redirect_uris = list(redirect_uris or [])
        if profile == "web" and not redirect_uris:
            raise ValueError("web clients need at least one registered redirect URI")
        groups = list(groups or [])
        with self.lock:
            for g in groups:
                if g not in self.groups:
                    raise ValueError(f"unknown group id {g}")
            old = self.clients.get(client_id)
            if old is not None:
                self.users.pop(old.user_id, None)
            uid = user_id or new_id()
            client = ApiClient(
                client_id=client_id,
                client_secret=client_secret,
                profile=profile,
                grant_types=list(grant_types),
                scopes=scopes,
                token_endpoint_auth_methods=methods,
                redirect_uris=redirect_uris,
                user_id=uid,
                display_name=display_name or client_id,
                seeded=seeded,
            )
            self.clients[client_id] = client
            self.users[uid] = User(
                user_id=uid,
                name=client_id,
                display_name=client.display_name,
                groups=groups,
                client_id=client_id,
            )
            return client

    def find_user(self, user_id: str) -> User | None:
        """User by id (case-insensitive GUID match)."""
        with self.lock:
            u = self.users.get(user_id) or self.users.get(user_id.lower())
            return u

    def find_user_by_name(self, name: str) -> User | None:
        """User by user name."""
        with self.lock:
            return next((u for u in self.users.values() if u.name == name), None)

    def find_group(self, group_id: str) -> Group | None:
        """Group by id (case-insensitive GUID match)."""
        with self.lock:
            return self.groups.get(group_id) or self.groups.get(group_id.lower())

    def resolve_principal(self, ref: str) -> str | None:
        """A user/group id from an id, a group name, a user name or a client id."""
        from airflow_provider_spotfire.emulator.seed import GROUP_EVERYONE

        with self.lock:
            if ref in self.groups or ref in self.users:
                return ref
            for g in self.groups.values():
                if g.name == ref:
                    return g.group_id
            if ref in self.clients:
                return self.clients[ref].user_id
            u = self.find_user_by_name(ref)
            if u:
                return u.user_id
            return GROUP_EVERYONE if ref.lower() == "everyone" else None

    def group_ancestors(self, group_id: str) -> list[str]:
        """Groups that ``group_id`` is (transitively) a member of, nearest first, without itself."""
        with self.lock:
            seen: list[str] = []
            queue = list(self.groups[group_id].member_of) if group_id in self.groups else []
            while queue:
                g = queue.pop(0)
                if g in seen or g == group_id or g not in self.groups:
                    continue
                seen.append(g)
                queue.extend(self.groups[g].member_of)
            return seen

    def user_groups(self, user_id: str) -> list[str]:
        """All groups of a user: direct, transitive and the implicit Everyone group."""
        from airflow_provider_spotfire.emulator.seed import GROUP_EVERYONE

        with self.lock:
            user = self.users.get(user_id)
            result: list[str] = []
            for g in user.groups if user else []:
                for x in [g, *self.group_ancestors(g)]:
                    if x not in result:
                        result.append(x)
            if GROUP_EVERYONE not in result:
                result.append(GROUP_EVERYONE)
            return result

    def principal_ids(self, user_id: str) -> set[str]:
        """The user id plus all its group ids (for permission checks)."""
        return {user_id, *self.user_groups(user_id)}

    def is_admin(self, user_id: str) -> bool:
        """Member (directly or transitively) of the Administrator group."""
        from airflow_provider_spotfire.emulator.seed import GROUP_ADMINISTRATOR

        return GROUP_ADMINISTRATOR in self.user_groups(user_id)

    # --- tokens
    def issue_token(
        self,
        kind: str,
        client_id: str,
        user_id: str,
        scopes: list[str],
        lifetime: float | None,
        grant_id: str,
    ) -> Token:
        """Create and store an opaque token (``lifetime`` None or 0 for refresh = never expires)."""
        with self.lock:
            now = self.now()
            tok = Token(
                value=secrets.token_urlsafe(32),
                kind=kind,
                client_id=client_id,
                user_id=user_id,
                scopes=list(scopes),
                issued_at=now,
                expires_at=None if lifetime is None else now + lifetime,
                grant_id=grant_id,
            )
            self.tokens[tok.value] = tok
            return tok

    def revoke_grant(self, grant_id: str) -> int:
        """Revoke every token of one grant (authorization or client credentials issuance)."""
        with self.lock:
            n = 0
            for t in self.tokens.values():
                if t.grant_id == grant_id and not t.revoked:
                    t.revoked = True
                    n += 1
            if n:
                self.count("grants_revoked")
            return n

    def revoke_client_tokens(self, client_id: str | None = None) -> int:
        """Revoke all tokens (of one client, or of everyone)."""
        with self.lock:
            n = 0
            for t in self.tokens.values():
                if (client_id is None or t.client_id == client_id) and not t.revoked:
                    t.revoked = True
                    n += 1
            return n

    # --- library
    def new_content_path(self, suffix: str = "") -> str:
        """A fresh path for a library item content file (items may consist of several part files)."""
        return os.path.join(self.gen_dir, "items", f"{new_id()}{suffix}.bin")

    def new_job_dir(self, job_id: str) -> str:
        """Create the directory holding the chunks of an upload job."""
        d = os.path.join(self.gen_dir, "jobs", job_id)
        os.makedirs(d, exist_ok=True)
        return d

    def add_folder(
        self,
        path: str,
        read: list[str] | None = None,
        write: list[str] | None = None,
        folder_id: str | None = None,
        parents: bool = False,
    ) -> Folder:
        """Create a folder (read/write default to the parent's; ``parents`` creates missing ancestors)."""
        norm = normalize_folder_path(path)
        if norm is None:
            raise ValueError(f"invalid folder path {path!r}")
        with self.lock:
            if norm in self.folders:
                f = self.folders[norm]
                if read is not None:
                    f.read = set(read)
                if write is not None:
                    f.write = set(write)
                return f
            parent_perm: Folder | None = None
            if norm != "/":
                parent, _, _ = norm.rpartition("/")
                parent = parent or "/"
                if parent not in self.folders:
                    if not parents:
                        raise KeyError(f"parent folder {parent} does not exist")
                    self.add_folder(parent, read=read, write=write, parents=True)
                parent_perm = self.folders[parent]
            f = Folder(
                folder_id=folder_id or new_id(),
                path=norm,
                read=set(read) if read is not None else set(parent_perm.read if parent_perm else []),
                write=set(write) if write is not None else set(parent_perm.write if parent_perm else []),
                created=self.now(),
            )
            self.folders[norm] = f
            return f

    def remove_folder(self, path: str) -> int:
        """Delete a folder with everything below it; returns the number of removed items."""
        norm = normalize_folder_path(path)
        if norm is None or norm not in self.folders:
            raise KeyError(f"folder {path} does not exist")
        if norm == "/":
            raise ValueError("the root folder cannot be removed")
        prefix = norm + "/"
        with self.lock:
            for p in [p for p in self.folders if p == norm or p.startswith(prefix)]:
                del self.folders[p]
            doomed = [
                i for i in self.items.values() if i.parent_path == norm or i.parent_path.startswith(prefix)
            ]
            for item in doomed:
                del self.items[item.item_id]
        for item in doomed:
            unlink_all(item.content_paths)
        return len(doomed)

    def add_item(
        self,
        parent_path: str,
        title: str,
        item_type: str,
        content: bytes,
        item_id: str | None = None,
        description: str = "",
        keywords: list[str] | None = None,
        created_by: str | None = None,
    ) -> LibraryItem:
        """Create or replace (same id kept) a library item from in-memory bytes (admin/seed use only)."""
        from airflow_provider_spotfire.emulator.seed import TYPE_AS_JOB

        parent = normalize_folder_path(parent_path)
        if parent is None or not title or "/" in title:
            raise ValueError("invalid parent path or title")
        behaviour = None
        if item_type == TYPE_AS_JOB:
            from airflow_provider_spotfire.emulator.automation import parse_job_xml

            behaviour = parse_job_xml(content)
        path = self.new_content_path()
        Path(path).write_bytes(content)
        with self.lock:
            if parent not in self.folders:
                _unlink(path)
                raise KeyError(f"folder {parent} does not exist")
            now = self.now()
            existing = self.find_item(join_path(parent, title), item_type)
            if existing is not None:
                old = existing.content_paths
                existing.content_paths = [path]
                existing.size = len(content)
                existing.sha256 = hashlib.sha256(content).hexdigest()
                existing.modified = now
                existing.as_behaviour = behaviour
                unlink_all(old)
                return existing
            item = LibraryItem(
                item_id=item_id or new_id(),
                parent_path=parent,
                title=title,
                type=item_type,
                size=len(content),
                sha256=hashlib.sha256(content).hexdigest(),
                content_paths=[path],
                created=now,
                modified=now,
                description=description,
                keywords=list(keywords or []),
                created_by=created_by,
                as_behaviour=behaviour,
            )
            self.items[item.item_id] = item
            return item

    def find_item(self, path: str, item_type: str | None = None) -> LibraryItem | None:
        """Item by full library path (optionally of one type)."""
        split = split_path(path)
        if split is None:
            return None
        parent, title = split
        with self.lock:
            for it in self.items.values():
                if (
                    it.parent_path == parent
                    and it.title == title
                    and (item_type is None or it.type == item_type)
                ):
                    return it
            return None

    def find_item_by_id(self, item_id: str) -> LibraryItem | None:
        """Item by GUID (case-insensitive)."""
        with self.lock:
            return self.items.get(item_id) or self.items.get(item_id.lower())

    def remove_item(self, item_id: str) -> bool:
        """Delete one library item."""
        with self.lock:
            item = self.items.pop(item_id, None)
        if item:
            unlink_all(item.content_paths)
        return item is not None

    def can_read(self, user_id: str, folder: str) -> bool:
        """Read permission on a folder."""
        with self.lock:
            f = self.folders.get(folder)
            return f is not None and bool(f.read & self.principal_ids(user_id))

    def can_write(self, user_id: str, folder: str) -> bool:
        """Write permission on a folder."""
        with self.lock:
            f = self.folders.get(folder)
            return f is not None and bool(f.write & self.principal_ids(user_id))

    # --- licenses
    def group_assignments(self, group_id: str, including_heritage: bool) -> dict[str, list[str]]:
        """License → enabled functions of a group (explicit, or merged with the groups it is in)."""
        with self.lock:
            groups = [group_id, *(self.group_ancestors(group_id) if including_heritage else [])]
            return self._merge_assignments(groups)

    def user_assignments(self, user_id: str) -> dict[str, list[str]]:
        """License → enabled functions of a user (union over all its groups incl. Everyone)."""
        with self.lock:
            return self._merge_assignments(self.user_groups(user_id))

    def _merge_assignments(self, groups: list[str]) -> dict[str, list[str]]:
        merged: dict[str, set[str]] = {}
        for g in groups:
            for lic, funcs in self.assignments.get(g, {}).items():
                merged.setdefault(lic, set()).update(funcs)
        # keep catalog order
        result: dict[str, list[str]] = {}
        for lic in self.licenses:
            if lic in merged:
                result[lic] = [f for f in self.licenses[lic]["functions"] if f in merged[lic]]
        return result

    # --- inspection
    def snapshot(self) -> dict[str, Any]:
        """Everything the inspection endpoint ``GET /_emulator/state`` shows."""
        with self.lock:
            now = self.now()
            return {
                "now": iso(now),
                "clock_offset": self.clock_offset,
                "clock_frozen": self.frozen_at is not None,
                "data_dir": self.base_dir,
                "clients": [c.to_dict() for c in self.clients.values()],
                "users": [
                    {
                        "id": u.user_id,
                        "name": u.name,
                        "displayName": u.display_name,
                        "groups": u.groups,
                        "clientId": u.client_id,
                    }
                    for u in self.users.values()
                ],
                "groups": [
                    {"id": g.group_id, "name": g.name, "memberOf": g.member_of} for g in self.groups.values()
                ],
                "library": {
                    "folders": [
                        {"id": f.folder_id, "path": f.path, "read": sorted(f.read), "write": sorted(f.write)}
                        for f in sorted(self.folders.values(), key=lambda f: f.path)
                    ],
                    "items": [i.to_dict() for i in sorted(self.items.values(), key=lambda i: i.path)],
                },
                "upload_jobs": [j.to_dict() for j in self.upload_jobs.values()],
                "as_jobs": [j.to_dict(now) for j in self.as_jobs.values()],
                "licenses": {
                    "catalog": list(self.licenses),
                    "assignments": {
                        gid: {lic: list(funcs) for lic, funcs in lics.items()}
                        for gid, lics in self.assignments.items()
                        if lics
                    },
                },
                "tokens": {
                    "active_access": sum(
                        1 for t in self.tokens.values() if t.kind == "access" and t.valid(now)
                    ),
                    "active_refresh": sum(
                        1 for t in self.tokens.values() if t.kind == "refresh" and t.valid(now)
                    ),
                },
                "counters": _deepcopy_json(self.counters),
                "fault_script": list(self.fault_script),
            }


def _deepcopy_json(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _deepcopy_json(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_deepcopy_json(v) for v in obj]
    return obj


def _unlink(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def unlink_all(paths: list[str]) -> None:
    """Delete files, ignoring missing ones."""
    for p in paths:
        _unlink(p)
