"""Output files, written so that nothing is lost or destroyed: a path is checked before any
work (one line if it cannot be written), and written afterwards through a temporary file in
the same directory renamed into place, so a failed or interrupted write leaves the old file
as it was. Only paths the command created itself are ever removed; special files (a device
such as /dev/null, a FIFO) are written in place and never replaced or removed."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from typing import IO, Any

from sim.errors import InputError


def _special(path: str) -> bool:
    """An existing path that is not a regular file or directory (device, FIFO, socket)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def check_output(path: str | os.PathLike, what: str) -> str:
    """Refuse, before any work, an output path that cannot be written; create nothing.
    Returns the path as text. `what` names it in the message: "cannot write {what} '{path}':
    why" (e.g. what="the trace (--trace)")."""
    p = os.fspath(path)
    if not isinstance(p, str) or not p.strip():
        raise InputError(f"{what} needs a file name, got {p!r}")

    def refuse(why: str) -> InputError:
        return InputError(f"cannot write {what} to '{p}': {why}")
    if os.path.isdir(p):
        raise refuse("it is a directory; give a file name")
    if _special(p):
        if not os.access(p, os.W_OK):
            raise refuse("permission denied")
        return p
    real = os.path.realpath(p)
    parent = os.path.dirname(real) or "."
    if not os.path.isdir(parent):
        raise refuse(f"its directory '{parent}' does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise refuse(f"its directory '{parent}' is not writable")
    if os.path.exists(real) and not os.access(real, os.W_OK):
        raise refuse("the file is not writable")
    return p


def write_atomic(path: str | os.PathLike, write: Callable[[IO[Any]], None], what: str,
                 binary: bool = False) -> None:
    """Call write(f) on a temporary file beside `path`, then rename it into place. A special
    file is written in place. On failure the temporary file (ours) is removed, `path` is left
    as it was, and InputError names it."""
    p = os.fspath(path)
    mode = "wb" if binary else "w"
    enc = None if binary else "utf-8"
    try:
        if _special(p):
            with open(p, mode, encoding=enc) as f:
                write(f)
            return
        real = os.path.realpath(p)
        d = os.path.dirname(real) or "."
        fd, tmp = tempfile.mkstemp(dir=d, prefix=f".{os.path.basename(real)}.", suffix=".tmp")
        try:
            with os.fdopen(fd, mode, encoding=enc) as f:
                write(f)
            _permissions(tmp, real)
            os.replace(tmp, real)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)                 # our own temporary file, never `path`
            raise
    except OSError as e:
        raise InputError(f"cannot write {what} to '{p}': {e.strerror or e}") from None


def _permissions(tmp: str, target: str) -> None:
    """The mode a plain open() would give: the old file's, or 0666 less the umask."""
    try:
        os.chmod(tmp, stat.S_IMODE(os.stat(target).st_mode))
        return
    except OSError:
        pass
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)


def write_text(path: str | os.PathLike, text: str, what: str) -> None:
    write_atomic(path, lambda f: f.write(text), what)


def output_in(prefix: str, default_name: str) -> str:
    """A prefix naming a directory (an existing one, or ending in '/') means files inside
    it: '/tmp' with default name 'explore-violation-' gives '/tmp/explore-violation-'."""
    if prefix.endswith(os.sep) or os.path.isdir(prefix):
        return os.path.join(prefix, default_name)
    return prefix


@contextlib.contextmanager
def pipe_safe_stdout() -> Iterator[Any]:
    """Within it, sys.stdout is a stand-in that, once the reader has gone (EPIPE), sends the
    rest of the output to /dev/null: the command finishes and its exit code still says what
    the result was (for the command line; the library itself never prints)."""
    import sys
    real = sys.stdout
    guard = _PipeGuard(real)
    sys.stdout = guard
    try:
        yield guard
    finally:
        guard.flush()
        sys.stdout = real


class _PipeGuard:
    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.broken = False

    def _divert(self) -> None:
        self.broken = True
        try:                          # the process's real stdout: no error at exit either
            fd = self.stream.fileno()
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, fd)
            os.close(null)
        except (OSError, ValueError, AttributeError):
            pass

    def write(self, s: str) -> int:
        if not self.broken:
            try:
                return self.stream.write(s)
            except BrokenPipeError:
                self._divert()
        return len(s)

    def flush(self) -> None:
        if not self.broken:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._divert()

    def isatty(self) -> bool:
        return not self.broken and self.stream.isatty()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


__all__ = ["check_output", "write_atomic", "write_text", "output_in", "pipe_safe_stdout"]
