"""The one error type for mistakes a user can make and fix."""

import errno


class GalaxyError(Exception):
    """A user-caused problem: the message says what, where, and what to do.

    The CLI prints it and exits 2; the UI shows it as a notification. Never a traceback.
    """


def storage_problem(exc: OSError) -> str | None:
    """What a file-system error means to the person who can fix it (a full disk, a read-only or forbidden
    folder, a name too long), or None for an error that is not theirs to fix."""
    where = exc.filename or "a file"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"no space left to write {where}; free some space and run it again."
    if exc.errno == errno.EROFS:
        return f"cannot write {where}: the file system is read-only."
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"permission denied for {where}; check its permissions (and its folder's)."
    if exc.errno == errno.ENAMETOOLONG:
        return f"the name {str(where)[:80]}… is too long for the file system."
    if exc.errno == errno.EISDIR:
        return f"{where} is a folder, where a file was expected."
    if exc.errno == errno.ENOTDIR:
        return f"{where}: a part of this path is a file, where a folder was expected."
    if exc.errno == errno.EIO:
        return f"the disk could not read or write {where} (input/output error)."
    return None
