"""Keys typed while the program starts are kept. textual-image asks the terminal what it can draw as it is
imported, reading stdin for the answer one character at a time: a key typed meanwhile was taken for a wrong answer
and lost (about one start in three in tmux), and the terminal's real answer then reached Textual as if typed (its
`?` opened the help). Its reader is replaced, before that import, by one that sets aside whatever is not the
answer; the app replays those keys once it is on screen."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace

from textual import events

_kept: list[str] = []


@contextmanager
def capture_keeping_keys(start_marker: str, end_marker: str,
                         timeout: float | None = None) -> Iterator[SimpleNamespace]:
    """textual-image's capture_terminal_response, except that the bytes around the answer are kept as keys."""
    from textual_image._terminal import TerminalError, capture_mode, read
    if not sys.__stdin__:
        raise TerminalError("stdin is closed")
    fd = sys.__stdin__.fileno()
    response = SimpleNamespace(sequence="")
    with capture_mode():
        yield response
        received = ""
        while True:
            start = received.find(start_marker)
            end = received.find(end_marker, start + len(start_marker)) if start >= 0 else -1
            if end >= 0:
                response.sequence = received[start:end + len(end_marker)]
                _kept.append(received[:start] + received[end + len(end_marker):])
                return
            try:
                received += read(fd, 1024, timeout)
            except TimeoutError:  # no answer (the terminal does not know the question): all of it was typed
                _kept.append(received)
                raise


def keep_keys_from_the_terminal_probe() -> None:
    """Before textual-image's renderables are imported (they probe the terminal as they load)."""
    if "textual_image.renderable" in sys.modules:
        return
    try:
        import textual_image._terminal as terminal
    except ImportError:
        return
    if hasattr(terminal, "capture_terminal_response"):
        terminal.capture_terminal_response = capture_keeping_keys  # type: ignore[assignment]


def kept_keys() -> str:
    """What was typed during the probe (taken once)."""
    typed = "".join(_kept)
    _kept.clear()
    return typed


def key_events(typed: str) -> list[events.Key]:
    """The keys in what was typed, parsed as Textual parses the terminal (escape sequences included)."""
    try:
        from textual._xterm_parser import XTermParser
        parsed = list(XTermParser().feed(typed))
    except (ImportError, TypeError):  # a Textual whose parser is built otherwise: the printable keys alone
        from textual.keys import _character_to_key
        parsed = [events.Key(_character_to_key(char), char) for char in typed if char.isprintable()]
    return [event for event in parsed if isinstance(event, events.Key)]
