"""What the server accepts, and so what bounds its memory. Stdlib only: `serve` states the bounds before it
imports the web stack."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 10 * 2**20  # per image
    max_files: int = 16          # per request
    max_batch: int = 32          # images per forward pass
    max_pixels: int | None = 4096 * 4096  # per image, read from its header before decoding (None: no limit)
    decodes: int = 2             # images decoded at once: with max_pixels, what bounds the decoders' memory
    stall_s: float = 30.0        # an upload that sends nothing this long is answered 408

    @property
    def decode_bytes(self) -> int | None:
        """The most the decoders hold at once: each image as decoded and as RGB."""
        return None if self.max_pixels is None else self.decodes * self.max_pixels * 3 * 2
