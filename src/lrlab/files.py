"""Reading and writing lrlab's files safely. Standard library only.

* Writes are atomic: a uniquely named temporary file in the same folder (created exclusively, so a symbolic link
  planted at any name is never written through), then `os.replace`, so a reader (or a crash, or ``kill -9``) sees
  the old file or the new one, never a torn one; the temporary file is removed when the write fails.
* Appends (`open_append`) refuse a symbolic link where the file should be.
* JSON is written as standard JSON (`json_text`: non-finite floats become ``null``) and read leniently
  (`read_json` still accepts the ``Infinity`` / ``NaN`` of older files).
* Every failure is a `FileError` naming the file and what went wrong: a one-line message for the CLI, and still an
  `OSError` for code that catches those.
* `FolderLock`: one lrlab process at a time writes a run folder.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import math
import os
import socket
import sys
import tempfile
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from lrlab.errors import LrlabError

try:  # POSIX; without it (Windows) a FolderLock records its holder but cannot exclude another process
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

#: what an `OSError` means, in words a user can act on
_REASONS = {
    errno.ENOSPC: "no space left on the device (disk full)",
    errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system",
    errno.ENOENT: "no such file or folder",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "it is a folder, not a file",
    errno.EEXIST: "it exists already",
    errno.ELOOP: "it is a symbolic link (lrlab does not write through links in its folders: remove the link)",
    errno.ENAMETOOLONG: "the name is too long",
    errno.EIO: "input/output error",
}


class FileError(LrlabError, OSError):
    """A file or folder could not be read or written. The message names the path and the reason; ``errno``,
    ``strerror`` and ``filename`` are those of the `OSError` behind it, when there is one."""

    def __init__(self, message: str, *, errno: int | None = None, reason: str | None = None,
                 path: str | None = None) -> None:
        super().__init__(message)
        self.errno = errno
        self.strerror = reason
        self.filename = path

    def __str__(self) -> str:
        return str(self.args[0])

    def __reduce__(self) -> tuple[Any, ...]:  # pickles (a worker process raises it to the driver)
        return (_file_error, (self.args[0], self.errno, self.strerror, self.filename))


def _file_error(message: str, code: int | None, reason: str | None, path: str | None) -> FileError:
    return FileError(message, errno=code, reason=reason, path=path)


def reason(e: OSError) -> str:
    """What ``e`` means, in words (``disk full``, ``permission denied``, ...)."""
    if isinstance(e, FileError):
        return e.strerror or str(e)
    return _REASONS.get(e.errno or -1) or e.strerror or str(e)


def file_error(action: str, path: str | os.PathLike[str], e: OSError) -> FileError:
    """``FileError("cannot {action} '{path}': {reason}")`` for the `OSError` ``e``; a `FileError` passes through."""
    if isinstance(e, FileError):
        return e
    why = reason(e)
    return FileError(f"cannot {action} {str(path)!r}: {why}", errno=e.errno, reason=why, path=str(path))


# ------------------------------------------------------------------------------------------------- writing


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def make_dir(path: str | os.PathLike[str], *, what: str = "folder") -> Path:
    """Create folder ``path`` (and its parents) if it does not exist; `FileError` when it cannot be: ``what``
    names it in the message (e.g. ``--out``)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FileError(f"{what} {str(path)!r} is a file, not a folder; give a folder (a new one is created)",
                        errno=errno.ENOTDIR, reason="not a folder", path=str(path))
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        why = reason(e)
        raise FileError(f"cannot create {what} {str(path)!r}: {why}", errno=e.errno, reason=why,
                        path=str(path)) from None
    return path


def atomic_write_with(path: str | os.PathLike[str], write: Callable[[IO[bytes]], object], *,
                      fsync: bool = False) -> None:
    """Call ``write(f)`` on a new temporary file beside ``path``, then rename it to ``path`` (its folder created
    if needed), with the permissions ``open`` would give. ``fsync``: also flush the data to the disk before the
    rename (survives a power loss, not only a crash of this process). On any failure (disk full, ...) the
    temporary file is removed and ``path`` keeps its old content; an `OSError` becomes a `FileError`."""
    path = Path(path)
    make_dir(path.parent)
    try:
        # mkstemp opens with O_CREAT | O_EXCL under a random name: it never follows a planted link
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise file_error("write", path, e) from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_current_umask())  # mkstemp makes it private; give it the permissions open() would
        os.replace(tmp, path)
    except OSError as e:
        raise file_error("write", path, e) from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, fsync: bool = False) -> None:
    """Write ``data`` to ``path`` atomically (`atomic_write_with`)."""
    atomic_write_with(path, lambda f: f.write(data), fsync=fsync)


def atomic_write_text(path: str | os.PathLike[str], text: str, *, fsync: bool = False) -> None:
    """`atomic_write_bytes` of ``text`` in UTF-8."""
    atomic_write_bytes(path, text.encode("utf-8"), fsync=fsync)


def atomic_copy(source: str | os.PathLike[str], path: str | os.PathLike[str], *, fsync: bool = False) -> None:
    """Copy file ``source`` to ``path`` atomically (`atomic_write_with`)."""
    import shutil

    try:
        src = open(source, "rb")  # noqa: SIM115 - closed below
    except OSError as e:
        raise file_error("read", source, e) from None
    with src:
        atomic_write_with(path, lambda f: shutil.copyfileobj(src, f, 1 << 20), fsync=fsync)


def open_append(path: str | os.PathLike[str], *, newline: str | None = None) -> io.TextIOWrapper:
    """``path`` opened for appending UTF-8 text (created if missing); `FileError` when it is a symbolic link (a
    link planted in a run folder would otherwise redirect lrlab's writes to any file) or cannot be opened."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as e:
        raise file_error("append to", path, e) from None
    f = os.fdopen(fd, "a", encoding="utf-8", newline=newline)
    f.buffer.raw.name = os.fspath(path)  # type: ignore[attr-defined]  # for messages (else the descriptor number)
    return f


def open_update(path: str | os.PathLike[str]) -> IO[bytes]:
    """``path`` opened for reading and writing bytes in place (``rb+``), refusing a symbolic link like
    `open_append`."""
    try:
        fd = os.open(path, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise file_error("update", path, e) from None
    return os.fdopen(fd, "rb+")


# ------------------------------------------------------------------------------------------------- reading


def read_bytes(path: str | os.PathLike[str], *, what: str = "file") -> bytes:
    """The bytes of file ``path``; `FileError` naming ``what`` and the path when it is missing, a folder or
    unreadable."""
    path = Path(path)
    try:
        return path.read_bytes()
    except OSError as e:
        why = reason(e)
        raise FileError(f"cannot read {what} {str(path)!r}: {why}", errno=e.errno, reason=why,
                        path=str(path)) from None


def decode_utf8(data: bytes, path: str | os.PathLike[str], *, what: str = "file") -> str:
    """``data`` (read from ``path``) as UTF-8 text, a leading byte-order mark dropped; `LrlabError` naming the
    file and its encoding when it is not UTF-8 (UTF-16 and UTF-32 are recognised by their byte-order marks) or
    holds a zero byte (UTF-16 without its mark, binary data)."""
    boms = ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"), (b"\xff\xfe", "UTF-16"),
            (b"\xfe\xff", "UTF-16"))
    for bom, name in boms:
        if data.startswith(bom):
            raise LrlabError(f"{what} {str(path)!r} is {name} text; lrlab reads UTF-8: convert it (e.g. iconv -f "
                             f"{name} -t UTF-8)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        kind = "binary data or text in another encoding" if b"\x00" in data[:4096] else "text in another encoding"
        raise LrlabError(f"{what} {str(path)!r} is not UTF-8 text (byte 0x{data[e.start]:02x} at offset "
                         f"{e.start}); expected UTF-8, got {kind}") from None
    if "\x00" in text:  # valid UTF-8, but no text lrlab reads holds a zero byte: ASCII in UTF-16 without its mark
        at = data.index(b"\x00")
        raise LrlabError(f"{what} {str(path)!r} is not UTF-8 text (a zero byte at offset {at}: UTF-16 or UTF-32 "
                         f"without a byte-order mark, or binary data); expected UTF-8")
    return text


def read_text(path: str | os.PathLike[str], *, what: str = "file") -> str:
    """The UTF-8 text of ``path`` (`read_bytes` then `decode_utf8`)."""
    return decode_utf8(read_bytes(path, what=what), path, what=what)


def read_json(path: str | os.PathLike[str], *, what: str = "file", expect: type = dict) -> Any:
    """The JSON document in ``path`` (``Infinity`` / ``NaN`` accepted, as older lrlab files hold them), which
    must be an ``expect`` (a ``dict``: a JSON object); `LrlabError` naming the file and what was expected when it
    is missing, unreadable, not UTF-8, not JSON (truncated, binary) or of another type."""
    text = read_text(path, what=what)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        cut = " (it ends too early: truncated?)" if e.pos >= len(text.rstrip()) else ""
        raise LrlabError(f"{what} {str(path)!r} is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}"
                         f"{cut}; expected a JSON document written by lrlab") from None
    except RecursionError:
        raise LrlabError(f"{what} {str(path)!r} nests too deeply to be a file written by lrlab") from None
    if not isinstance(doc, expect):
        raise LrlabError(f"{what} {str(path)!r} holds {_json_kind(doc)}; expected {_json_kind(expect())}")
    return doc


def _json_kind(x: Any) -> str:
    if x is None:
        return "null"
    return {dict: "a JSON object", list: "a JSON list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number"}.get(type(x), type(x).__name__)


def json_safe(obj: Any) -> Any:
    """``obj`` with every non-finite float replaced by None (JSON ``null``): standard JSON has no Infinity or
    NaN, and ``jq``, browsers and most parsers refuse them. Tuples become lists."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def json_text(obj: Any, *, indent: int | None = 1) -> str:
    """``obj`` as standard JSON text (`json_safe`)."""
    return json.dumps(json_safe(obj), indent=indent, allow_nan=False)


def write_json(path: str | os.PathLike[str], obj: Any, *, fsync: bool = False) -> None:
    """Write ``obj`` to ``path`` as standard JSON (`json_text`), atomically."""
    atomic_write_text(path, json_text(obj), fsync=fsync)


# ---------------------------------------------------------------------------------------------------- locks

LOCK_FILE = ".lrlab.lock"
#: held shared by the worker processes of the lock holder, so a successor sees workers that outlived it
WORKERS_LOCK_FILE = ".lrlab.workers.lock"


class FolderLock:
    """An exclusive claim on a run folder while this process writes it: ``DIR/.lrlab.lock``, locked with
    ``flock`` and holding the holder's pid, host, command and start time for the message another process gets.

    The operating system releases the lock when its holder ends, however it ends (``kill -9`` too), so a lock
    file left by a dead process is simply taken over. Worker processes of the holder take
    ``DIR/.lrlab.workers.lock`` shared (`hold_shared`); `acquire` also waits (up to ``wait_workers_s``) for the
    workers of an earlier holder to be gone, so a resumed run never writes beside an orphan of the last one.
    """

    def __init__(self, folder: str | os.PathLike[str], *, command: str, wait_workers_s: float = 15.0) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self.command = command
        self.wait_workers_s = wait_workers_s
        self._release: weakref.finalize | None = None

    def acquire(self) -> FolderLock:
        """Take the lock; `LrlabError` naming the live holder when another process has it, `FileError` when the
        folder is not writable."""
        for _ in range(10):  # a holder may remove the file between our open and our lock: then open the new one
            fd = self._open(self.path)
            if fcntl is None:  # pragma: no cover - not POSIX
                break
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                holder = self._holder()
                os.close(fd)
                if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise LrlabError(f"{str(self.folder)!r} is in use by {holder}; wait for it to finish or stop "
                                     "it (Ctrl-C saves its progress), then run again") from None
                raise file_error("lock", self.path, e) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        else:  # pragma: no cover - ten races in a row
            raise FileError(f"cannot lock {str(self.path)!r}: it keeps being replaced", path=str(self.path))
        # released when `release` is called or, at the latest, when this object is collected
        self._release = weakref.finalize(self, _release_lock, fd, self.folder)
        try:
            self._wait_for_workers()
            info = {"pid": os.getpid(), "host": socket.gethostname(), "command": self.command,
                    "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode(), 0)
        except BaseException:
            self.release()
            raise
        return self

    def _open(self, path: Path) -> int:
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            return os.open(path, flags, 0o666)
        except OSError as e:
            why = reason(e)
            raise FileError(f"cannot write {str(path)!r} (lrlab needs to write its run folder): {why}",
                            errno=e.errno, reason=why, path=str(path)) from None

    def _holder(self) -> str:
        try:
            info = json.loads(self.path.read_text(encoding="utf-8"))
            return (f"{info.get('command', 'lrlab')} (pid {info.get('pid')} on host {info.get('host')}, since "
                    f"{info.get('started')})")
        except (OSError, ValueError, AttributeError):
            return "another lrlab process"

    def _wait_for_workers(self) -> None:
        if fcntl is None:  # pragma: no cover - not POSIX
            return
        fd = self._open(self.folder / WORKERS_LOCK_FILE)
        try:
            deadline = time.monotonic() + self.wait_workers_s
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return
                except OSError as e:
                    if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                        raise file_error("lock", self.folder / WORKERS_LOCK_FILE, e) from None
                if time.monotonic() > deadline:
                    raise LrlabError(
                        f"{str(self.folder)!r} is still written by worker processes of an earlier lrlab run whose "
                        f"driver has ended; they stop on their own within seconds (after saving a checkpoint): "
                        f"wait, or stop them (`fuser {self.folder / WORKERS_LOCK_FILE}` lists them), then run again")
                time.sleep(0.1)
        finally:
            os.close(fd)  # releases our exclusive claim: our own workers take it shared

    @property
    def held(self) -> bool:
        return self._release is not None and self._release.alive

    def release(self) -> None:
        """Give the lock up and remove its file (the folder is left as it was before)."""
        if self._release is not None:
            self._release()

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _release_lock(fd: int, folder: Path) -> None:
    # the workers' lock file goes first, unless a worker still holds it (one abandoned by a second Ctrl-C: the next
    # holder must see it); then the lock file, while still holding it: a waiter that opened it sees it replaced
    path = folder / WORKERS_LOCK_FILE
    with contextlib.suppress(OSError):
        wfd = os.open(path, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
        try:
            if fcntl is not None:
                fcntl.flock(wfd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            path.unlink()
        finally:
            os.close(wfd)
    with contextlib.suppress(OSError):
        (folder / LOCK_FILE).unlink()
    os.close(fd)


def hold_shared(path: str | os.PathLike[str]) -> int | None:
    """Take ``path`` (a `WORKERS_LOCK_FILE`) shared for the life of this process (a worker of a `FolderLock`
    holder); returns the descriptor to keep open, or None when locks are not available here."""
    if fcntl is None:  # pragma: no cover - not POSIX
        return None
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as e:
        raise file_error("lock", path, e) from None
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd


@contextlib.contextmanager
def locked(folder: str | os.PathLike[str], *, command: str | None = None) -> Iterator[FolderLock]:
    """`FolderLock` on ``folder`` for the block (``command``: how the holder is named; default: this process's
    command line)."""
    lock = FolderLock(folder, command=command or " ".join(Path(sys.argv[0]).name.split() + sys.argv[1:]))
    with lock:
        yield lock
