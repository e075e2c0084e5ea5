"""`galaxy-tui serve RUN [--host 127.0.0.1] [--port 8000]`: a trained run over HTTP until Ctrl+C."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

from rich.console import Console

from galaxy_tui.errors import GalaxyError
from galaxy_tui.registry import registry_for_reading
from galaxy_tui.runs import get_run
from galaxy_tui.serve.limits import Limits


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _check_free(host: str, port: int) -> None:
    """uvicorn logs a failed bind and exits; say it plainly before loading the model instead."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.create_server((host, port), family=family):
            pass
    except OSError as exc:
        raise GalaxyError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another --port "
                          f"(or stop what is using it).") from None


CONNECTIONS = 64  # at once; more are answered 503 by uvicorn, so queued uploads cannot pile up in memory


def _bounds(limits: Limits) -> str:
    decoding = (f"images over {limits.max_pixels:,} pixels refused (413); at most {limits.decodes} decoded at "
                f"once (≤ {limits.decode_bytes / 2**20:,.0f} MiB)" if limits.decode_bytes is not None
                else "no pixel limit (--max-pixels 0): a small file of huge dimensions can take gigabytes")
    return (f"{decoding}; at most {CONNECTIONS} connections; an upload that stalls {limits.stall_s:g} s is "
            f"answered 408")


def serve(workspace: Path, run_id: str, host: str, port: int, max_upload_mb: float, max_files: int,
          max_batch: int, device: str | None, max_pixels: int | None = 4096 * 4096) -> int:
    try:
        import uvicorn

        from galaxy_tui.serve.http_app import create_app
    except ImportError as exc:
        raise GalaxyError(f"serve needs the `serve` extra ({exc.name} is missing): "
                          f"pip install 'galaxy-tui[serve]'") from None
    from galaxy_tui.inference.servable import choose_device, load_run

    if max_upload_mb <= 0 or max_files < 1 or max_batch < 1:
        raise GalaxyError("--max-upload-mb must be above 0, --max-files and --max-batch at least 1.")
    run = get_run(registry_for_reading(workspace), run_id)
    _check_free(host, port)
    loaded = load_run(run.dir, choose_device(device))
    limits = Limits(int(max_upload_mb * 2**20), max_files, max_batch, max_pixels)
    console = Console()
    shown = f"[{host}]" if ":" in host else host
    console.print(f"serving [bold]{loaded.run_id}[/bold] ({loaded.task}: {', '.join(loaded.outputs[:6])}"
                  f"{' …' if len(loaded.outputs) > 6 else ''}) on {loaded.device} at http://{shown}:{port}\n"
                  f"  POST /classify (multipart files, at most {max_files} of {max_upload_mb:g} MiB each), "
                  f"GET /health, GET /model, GET /docs · Ctrl+C stops\n"
                  f"  try: curl -F file=@galaxy.jpg http://{shown}:{port}/classify\n"
                  f"  {_bounds(limits)}", soft_wrap=True)
    if not _is_loopback(host):
        console.print(f"[yellow]listening on {host}: anyone who can reach this machine on port {port} can use the "
                      f"model (there is no authentication); --host 127.0.0.1 keeps it to this machine[/yellow]",
                      soft_wrap=True)
    uvicorn.run(create_app(loaded, limits), host=host, port=port, log_level="warning", access_log=False,
                limit_concurrency=CONNECTIONS, timeout_keep_alive=5)
    return 0
