"""Library state of the emulator: folders with read/write principals, items and upload jobs.

Uploaded bytes never live in memory: chunks and item contents are files under the store's directory (one
per emulator generation, i.e. per ``reset``).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_provider_spotfire.emulator.automation_store import parse_job_xml
from airflow_provider_spotfire.emulator.constants import TYPE_AS_JOB
from airflow_provider_spotfire.emulator.core import Clock, PollLog, Principals, iso, new_id


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
    sha256: str | None  # None until asked for (LibraryStore.hash_items): real servers keep none
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
class ItemContent:
    """Open handles on an item's content files, as they were when opened, and its sha256 if known."""

    item: LibraryItem
    paths: list[str]
    handles: list[io.FileIO]
    sha256: str | None

    def close(self) -> None:
        for fh in self.handles:
            fh.close()


@dataclass
class Chunk:
    """One stored chunk of an upload job."""

    number: int
    path: str
    size: int
    first_bytes: bytes


_READ_BLOCK = 1024 * 1024


def sha256_of_files(files: list[io.FileIO]) -> str:
    """Hex sha256 of the concatenated open ``files``, read in 1 MiB blocks; each is rewound after."""
    sha = hashlib.sha256()
    block = bytearray(_READ_BLOCK)
    view = memoryview(block)
    for fh in files:
        while n := fh.readinto(block):
            sha.update(view[:n])
        fh.seek(0)
    return sha.hexdigest()


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
    polls: PollLog = field(default_factory=PollLog)  # GET status requests
    cancel_requests: int = 0  # DELETE requests

    @property
    def status_polls(self) -> int:
        """Number of GET status requests."""
        return self.polls.count

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
            "status_poll_times": self.polls.times_iso(),
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


def unlink_all(paths: list[str]) -> None:
    """Delete files, ignoring missing ones."""
    for p in paths:
        with contextlib.suppress(OSError):
            os.unlink(p)


class LibraryStore:
    """Folders, items and upload jobs; permissions are folder-level principal sets."""

    def __init__(self, lock: threading.RLock, clock: Clock, principals: Principals, data_dir: str) -> None:
        self._lock = lock
        self._clock = clock
        self._principals = principals
        self.data_dir = data_dir
        os.makedirs(os.path.join(data_dir, "items"), exist_ok=True)
        os.makedirs(os.path.join(data_dir, "jobs"), exist_ok=True)
        self.folders: dict[str, Folder] = {}
        self.items: dict[str, LibraryItem] = {}
        self.upload_jobs: dict[str, UploadJob] = {}

    # --- files
    def new_content_path(self, suffix: str = "") -> str:
        """A fresh path for a library item content file (items may consist of several part files)."""
        return os.path.join(self.data_dir, "items", f"{new_id()}{suffix}.bin")

    def new_job_dir(self, job_id: str) -> str:
        """Create the directory holding the chunks of an upload job."""
        d = os.path.join(self.data_dir, "jobs", job_id)
        os.makedirs(d, exist_ok=True)
        return d

    # --- folders
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
        with self._lock:
            if norm in self.folders:
                f = self.folders[norm]
                if read is not None:
                    f.read = set(read)
                if write is not None:
                    f.write = set(write)
                return f
            parent_perm: Folder | None = None
            if norm != "/":
                parent = norm.rpartition("/")[0] or "/"
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
                created=self._clock.now(),
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
        with self._lock:
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

    def can_read(self, user_id: str, folder: str) -> bool:
        """Read permission on a folder."""
        with self._lock:
            f = self.folders.get(folder)
            return f is not None and bool(f.read & self._principals.principal_ids(user_id))

    def can_write(self, user_id: str, folder: str) -> bool:
        """Write permission on a folder."""
        with self._lock:
            f = self.folders.get(folder)
            return f is not None and bool(f.write & self._principals.principal_ids(user_id))

    # --- items
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
        parent = normalize_folder_path(parent_path)
        if parent is None or not title or "/" in title:
            raise ValueError("invalid parent path or title")
        behaviour = parse_job_xml(content) if item_type == TYPE_AS_JOB else None
        path = self.new_content_path()
        Path(path).write_bytes(content)
        with self._lock:
            if parent not in self.folders:
                unlink_all([path])
                raise KeyError(f"folder {parent} does not exist")
            now = self._clock.now()
            item = self.find_item(join_path(parent, title), item_type)
            if item is not None:
                old = item.content_paths
                item.content_paths, item.size, item.sha256 = [path], len(content), None
                item.modified, item.as_behaviour = now, behaviour
                unlink_all(old)
                return item
            item = LibraryItem(
                item_id=item_id or new_id(),
                parent_path=parent,
                title=title,
                type=item_type,
                size=len(content),
                sha256=None,
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
        with self._lock:
            for it in self.items.values():
                if it.parent_path == parent and it.title == title and item_type in (None, it.type):
                    return it
            return None

    def find_item_by_id(self, item_id: str) -> LibraryItem | None:
        """Item by GUID (case-insensitive)."""
        with self._lock:
            return self.items.get(item_id) or self.items.get(item_id.lower())

    def remove_item(self, item_id: str) -> bool:
        """Delete one library item."""
        with self._lock:
            item = self.items.pop(item_id, None)
        if item:
            unlink_all(item.content_paths)
        return item is not None

    def open_content(self, item: LibraryItem) -> ItemContent:
        """Open handles on the item's content files (call under the lock; the caller closes them).

        The handles stay readable when a concurrent overwrite or delete unlinks the files.
        """
        handles: list[io.FileIO] = []
        try:
            for p in item.content_paths:
                handles.append(open(p, "rb", buffering=0))  # noqa: SIM115 - closed by ItemContent.close
        except OSError:
            for fh in handles:
                fh.close()
            raise
        return ItemContent(item, list(item.content_paths), handles, item.sha256)

    def content_sha256(self, content: ItemContent) -> str:
        """The content's sha256: known, else hashed from its handles and kept (blocking: worker thread)."""
        if content.sha256 is None:
            content.sha256 = sha256_of_files(content.handles)
            with self._lock:
                if content.item.content_paths == content.paths:  # not overwritten while it was read
                    content.item.sha256 = content.sha256
        return content.sha256

    def hash_items(self) -> None:
        """Compute the sha256 of the items that have none yet (blocking: worker thread).

        Items get their sha256 when first asked for, not while they are uploaded: the Library API
        has no item checksum, and a real server spends no CPU on one next to the client's.
        """
        with self._lock:
            todo = [i for i in self.items.values() if i.sha256 is None]
        for item in todo:
            with self._lock:
                try:
                    content = self.open_content(item)
                except OSError:  # deleted meanwhile
                    continue
            try:
                self.content_sha256(content)
            finally:
                content.close()

    def snapshot(self) -> dict[str, Any]:
        """Folders and items for ``GET /_emulator/state`` (sha256 where known: see :meth:`hash_items`)."""
        with self._lock:
            return {
                "folders": [
                    {"id": f.folder_id, "path": f.path, "read": sorted(f.read), "write": sorted(f.write)}
                    for f in sorted(self.folders.values(), key=lambda f: f.path)
                ],
                "items": [i.to_dict() for i in sorted(self.items.values(), key=lambda i: i.path)],
            }
