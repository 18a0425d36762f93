"""Write files atomically: into a temporary file beside the target, then rename."""

from __future__ import annotations

import os
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

_UMASK_LOCK = threading.Lock()


def _umask() -> int:
    """The process umask (reading it means setting it; the lock keeps that atomic here)."""
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | os.PathLike[str]):
    """Yield a temporary path beside ``path`` (same suffixes); it replaces ``path`` on success.

    A crash mid-write leaves the old file (or none) in place, never a partial one. The file gets
    the permissions any new file of the user gets (0666 less the umask), not the temporary
    file's private 0600, so colleagues can read shared results.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(target.suffixes)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem.split('.')[0]}.", suffix=suffix, dir=target.parent)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
