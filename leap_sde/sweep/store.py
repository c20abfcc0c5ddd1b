"""The result store of a sweep: one folder per finished point plus one append-only index, owned by a single
writer process.

Layout of ``DIR``::

    DIR/.lock                 flock held by the one writer (a second sweep on DIR is refused)
    DIR/sweep.toml            the sweep as last run (base, grid, points, seed, plot hints)
    DIR/index.log             append-only: one 69-byte line per finished point (the resume check reads only this)
    DIR/rows.log              append-only: the points' parameters and headline numbers (JSON lines)
    DIR/results.csv           the results table, rebuilt atomically from rows.log and the index
    DIR/points/<key>/         the point's result folder, as ``leap-sde simulate`` writes it, plus done.json
    DIR/points/.tmp-<key>-*/  a point being written (removed on the next start)

Crash safety.  A point's files are written and fsynced into ``points/.tmp-<key>-*``, ``done.json`` (sizes and
SHA-256 of every file) last, then the folder is renamed to ``points/<key>`` (atomic) and only then one line is
appended to rows.log and one to the index (each fsynced).  A SIGKILL at any moment therefore leaves (a) a
``.tmp`` folder, deleted on restart, (b) a complete folder without an index line, verified against its done.json
and adopted on restart (its row is in done.json too), or (c) a torn last line, which fails its CRC and is
dropped: a torn index line makes its (intact) folder case (b); a rows.log line that is lost while its index
line survives (a full disk, a damaged file) is rebuilt from the record in the point's done.json.  Nothing
finished is lost.

Index line: ``<key> <cfg> <base> <row> <crc>\\n`` — three 16-hex-digit hashes (the point's parameters, its
resolved config, the sweep's base table and seed), the CRC-32 of the point's rows.log line and the CRC-32 of
the index line itself.  Rows line: ``<key> <crc> <json>\\n``.  The resume check reads only the index (fixed
width, no JSON) and lists ``points/`` once: 10⁵ finished points are checked in a fraction of a second.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import uuid
import zlib
from typing import NamedTuple
from pathlib import Path

from .._io import atomic_write_bytes, _json_default

__all__ = ["Store", "StoreBusy", "IndexEntry", "canonical_json", "short_hash", "file_digest"]

INDEX = "index.log"
ROWS = "rows.log"
POINTS = "points"
DONE = "done.json"
LOCK = ".lock"
HASH_LEN = 16


class StoreBusy(RuntimeError):
    """Another process holds the store's lock."""


def canonical_json(obj) -> str:
    """Key-sorted, whitespace-free JSON: equal values give equal text (the input of every hash here)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_json_default)


def short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:HASH_LEN]


def file_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class IndexEntry(NamedTuple):
    """One valid index line (``row``: CRC-32 of the point's rows.log payload, as 8 hex digits)."""

    key: str
    cfg: str
    base: str
    row: str


_HEAD = HASH_LEN * 3 + 2 + 1 + 8  # "key cfg base row"
_LEN = _HEAD + 9  # + " crc" (the newline excluded)


class Index(dict):
    """``{key: "key cfg base row"}`` (the head of the point's valid index line); :meth:`entry` parses one."""

    def entry(self, key: str) -> IndexEntry:
        t = self[key]
        return IndexEntry(t[:16], t[17:33], t[34:50], t[51:59])

    def base(self, key: str) -> str:
        return self[key][34:50]

    def entries(self):
        return [self.entry(k) for k in self]


def _crc32(data: bytes) -> str:
    return f"{zlib.crc32(data) & 0xFFFFFFFF:08x}"


def _index_line(key, cfg, base, row) -> bytes:
    head = f"{key} {cfg} {base} {row}".encode("ascii")
    return head + b" " + _crc32(head).encode("ascii") + b"\n"


def _open_log(path: Path):
    """Open an append-only log, first cutting a torn last line (a crash mid-append) back to the last newline."""
    f = open(path, "a+b")
    size = f.seek(0, os.SEEK_END)
    if size:
        f.seek(max(0, size - 65536))
        tail = f.read()
        if not tail.endswith(b"\n"):
            cut = tail.rfind(b"\n")
            f.truncate(size - len(tail) + cut + 1 if cut >= 0 else (0 if size <= 65536 else size))
            f.seek(0, os.SEEK_END)
    return f


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


class Store:
    """The store at ``root`` (see the module docstring).  Only the process holding :meth:`lock` writes."""

    def __init__(self, root):
        self.root = Path(root)
        self.points = self.root / POINTS
        self.index_path = self.root / INDEX
        self.rows_path = self.root / ROWS
        self._lock_fd = None
        self._index_f = None
        self._rows_f = None
        #: index lines dropped by the last :meth:`load_index` (torn or failed CRC) and superseded duplicates
        self.n_bad_lines = 0
        self.n_superseded = 0

    # -- ownership ---------------------------------------------------------------------------------------
    def lock(self) -> None:
        """Take the exclusive writer lock (released by the OS when the process dies, even by SIGKILL)."""
        import fcntl

        self.points.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise StoreBusy(f"{self.root} is in use by another sweep (lock file {self.root / LOCK})") from None
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def close(self) -> None:
        self._close_logs()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    def clean(self) -> int:
        """Remove folders left by an interrupted write (``.tmp-*``, ``.trash-*``); returns how many."""
        n = 0
        if self.points.is_dir():
            with os.scandir(self.points) as it:
                for e in it:
                    if e.name.startswith((".tmp-", ".trash-")):
                        shutil.rmtree(e.path, ignore_errors=True)
                        n += 1
        return n

    # -- reading -----------------------------------------------------------------------------------------
    def load_index(self) -> "Index":
        """The valid index lines, the last line of a key winning; sets ``n_bad_lines`` (torn or failed CRC)
        and ``n_superseded``.  One bulk decode, split and CRC pass: ~0.1 s for 10⁵ lines."""
        self.n_bad_lines = self.n_superseded = 0
        try:
            data = self.index_path.read_bytes()
        except FileNotFoundError:
            return Index()
        blines = data.split(b"\n")
        tlines = data.decode("ascii", errors="replace").split("\n")
        if blines[-1] == b"":
            blines.pop()
            tlines.pop()
        else:  # no trailing newline: the last line was torn by a crash
            blines.pop()
            tlines.pop()
            self.n_bad_lines += 1
        crc, n, h = zlib.crc32, _LEN, _HEAD
        valid = [t for t, b in zip(tlines, blines) if len(b) == n and t[h + 1:] == "%08x" % crc(b[:h])]
        idx = Index((t[:HASH_LEN], t[:h]) for t in valid)
        self.n_bad_lines += len(blines) - len(valid)
        self.n_superseded = len(valid) - len(idx)
        return idx

    def load_rows(self, index: "Index") -> dict:
        """``{key: record}`` for the points in ``index`` (the rows.log line whose CRC the index line names)."""
        want = {k: t[51:59] for k, t in index.items()}
        rows = {}
        try:
            data = self.rows_path.read_bytes()
        except FileNotFoundError:
            return rows
        for line in data.split(b"\n"):
            if len(line) < HASH_LEN + 10:
                continue
            key = line[:HASH_LEN].decode("ascii", "replace")
            crc = line[HASH_LEN + 1:HASH_LEN + 9].decode("ascii", "replace")
            if want.get(key) == crc and _crc32(line[HASH_LEN + 10:]) == crc:
                rows[key] = json.loads(line[HASH_LEN + 10:])
        return rows

    def row_crcs(self, *, tail_bytes: int | None = None):
        """``({key: crc}, complete)`` of the intact rows.log lines (payload CRC checked, no JSON parsing; a later
        line of a key wins).  With ``tail_bytes`` only the last that many bytes are read (the first, possibly
        partial, line skipped); ``complete`` says whether the whole file was read."""
        try:
            with open(self.rows_path, "rb") as f:
                size = f.seek(0, os.SEEK_END)
                start = 0 if tail_bytes is None else max(0, size - tail_bytes)
                f.seek(start)
                data = f.read()
        except FileNotFoundError:
            return {}, True
        lines = data.split(b"\n")
        if start > 0:
            lines = lines[1:]
        out = {}
        crc, h = zlib.crc32, HASH_LEN
        for line in lines:
            if len(line) >= h + 10 and line[h + 1:h + 9].decode("ascii", "replace") == "%08x" % crc(line[h + 10:]):
                out[line[:h].decode("ascii", "replace")] = line[h + 1:h + 9].decode("ascii")
        return out, start == 0

    def listing(self) -> set:
        """Names of the finished point folders (one directory listing)."""
        try:
            return {n for n in os.listdir(self.points) if n[0] != "."}
        except FileNotFoundError:
            return set()

    def read_done(self, key: str):
        try:
            return json.loads((self.points / key / DONE).read_text("utf-8"))
        except (OSError, ValueError):
            return None

    def verify(self, key: str):
        """None if ``points/<key>`` matches its done.json (every file's size and SHA-256), else what is wrong."""
        folder = self.points / key
        done = self.read_done(key)
        if not isinstance(done, dict) or not isinstance(done.get("files"), dict):
            return "done.json missing or unreadable"
        if done.get("key") != key:
            return "done.json belongs to another point"
        for name, meta in done["files"].items():
            try:
                data = (folder / name).read_bytes()
            except OSError:
                return f"{name} missing"
            if len(data) != meta.get("size") or file_digest(data) != meta.get("sha256"):
                return f"{name} does not match its checksum (half-written or corrupt)"
        return None

    # -- writing (the lock holder only) ------------------------------------------------------------------
    def write_point(self, key: str, files: dict, done: dict) -> None:
        """Write ``files`` ({name: bytes}) and done.json (``done`` + checksums) as ``points/<key>``, atomically
        (rename of a complete folder); an existing folder of that key is replaced."""
        tmp = self.points / f".tmp-{key}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir(parents=True)
        meta = {}
        for name, data in files.items():
            if "/" in name or name.startswith(".") or name == DONE:
                raise ValueError(f"invalid result file name {name!r}")
            with open(tmp / name, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            meta[name] = {"size": len(data), "sha256": file_digest(data)}
        atomic_write_bytes(tmp / DONE, (json.dumps({**done, "key": key, "files": meta}, indent=1,
                                                   default=_json_default) + "\n").encode("utf-8"))
        _fsync_dir(tmp)
        final = self.points / key
        trash = None
        if final.exists():
            trash = self.points / f".trash-{key}-{uuid.uuid4().hex[:8]}"
            os.rename(final, trash)
        os.rename(tmp, final)
        _fsync_dir(self.points)
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)

    def append(self, key: str, cfg: str, base: str, record: dict) -> None:
        """Record a finished point (after :meth:`write_point`): its row, then its index line, each fsynced."""
        payload = json.dumps(record, sort_keys=True, separators=(",", ":"), default=_json_default).encode("ascii")
        row = _crc32(payload)
        if self._rows_f is None:
            self._rows_f = _open_log(self.rows_path)
            self._index_f = _open_log(self.index_path)
        self._rows_f.write(f"{key} {row} ".encode("ascii") + payload + b"\n")
        self._rows_f.flush()
        os.fsync(self._rows_f.fileno())
        self._index_f.write(_index_line(key, cfg, base, row))
        self._index_f.flush()
        os.fsync(self._index_f.fileno())

    def compact(self, index: "Index", *, rebase: dict | None = None) -> None:
        """Rewrite rows.log and the index (atomically, in that order) keeping the points of ``index``: drops
        torn, superseded and unreferenced lines; ``rebase`` ({key: base hash}) replaces base hashes."""
        self._close_logs()
        rows = self.load_rows(index)
        rebase = rebase or {}
        keep = [e._replace(base=rebase.get(e.key, e.base)) for e in index.entries() if e.key in rows]
        out_rows, out_index = [], []
        for e in keep:
            payload = json.dumps(rows[e.key], sort_keys=True, separators=(",", ":"),
                                 default=_json_default).encode("ascii")
            row = _crc32(payload)
            out_rows.append(f"{e.key} {row} ".encode("ascii") + payload + b"\n")
            out_index.append(_index_line(e.key, e.cfg, e.base, row))
        atomic_write_bytes(self.rows_path, b"".join(out_rows))
        atomic_write_bytes(self.index_path, b"".join(out_index))

    def _close_logs(self):
        for f in (self._rows_f, self._index_f):
            if f is not None:
                f.close()
        self._rows_f = self._index_f = None
