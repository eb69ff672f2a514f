"""Reading a file named by the user without trusting it: regular files only, links kept inside their folder, and
never more than a limit read. A FIFO would block the read forever, a device (`/dev/zero`) never end."""

from __future__ import annotations

import os
import stat
from pathlib import Path

MAX_FILE_BYTES = 1024 * 1024
"""Values files and kubeconfigs: ApeRAG's largest values file is under 2 KiB, a kubeconfig with embedded
certificates under 20 KiB."""


class InputFileError(Exception):
    """A file refused before or while reading it; the message says what is wrong and the limit, not the path."""


def read_input_file(path: Path, *, within: Path | None = None, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of `path`, a regular file of at most `limit` bytes (a link to one inside `within` when given).

    Never blocks and never reads more than `limit` + 1 bytes: the type is checked before the file is opened, and
    again on the open descriptor (opened non-blocking, so a FIFO swapped in between cannot hang the read).
    """
    if within is not None:
        real, root = path.resolve(), within.resolve()
        if real != root and root not in real.parents:
            raise InputFileError(f"is a link to {real}, outside the folder {within} (links must stay inside it)")
    try:
        _check_regular(os.stat(path), limit)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise InputFileError(f"cannot read file: {exc.strerror or exc}") from None
    try:
        _check_regular(os.fstat(fd), limit)
        chunks: list[bytes] = []
        left = limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 65536))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as exc:
        raise InputFileError(f"cannot read file: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > limit:
        raise InputFileError(f"file is larger than {_size(limit)}, the limit for this file")
    return data


def _check_regular(info: os.stat_result, limit: int) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise InputFileError(f"is {_file_kind(info.st_mode)}, not a regular file")
    if info.st_size > limit:
        raise InputFileError(f"file is {_size(info.st_size)}, above the {_size(limit)} limit for this file")


def _file_kind(mode: int) -> str:
    kinds = (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((name for test, name in kinds if test(mode)), "not a file")


def _size(count: int) -> str:
    if count >= 1024 * 1024:
        return f"{count / (1024 * 1024):g} MiB" if count % (1024 * 1024) == 0 else f"{count / (1024 * 1024):.1f} MiB"
    return f"{count / 1024:.1f} KiB" if count >= 1024 else f"{count} bytes"
