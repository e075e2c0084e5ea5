"""The one error type for mistakes a user can make and fix."""


class GalaxyError(Exception):
    """A user-caused problem: the message says what, where, and what to do.

    The CLI prints it and exits 2; the UI shows it as a notification. Never a traceback.
    """
