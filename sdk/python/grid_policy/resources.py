"""Helpers on ``Resources`` records (the Rust SDK's ``Resources::fits_in`` and
``first_shortfall``), with the same wording so a port answers exactly like the original."""

from __future__ import annotations

from .quantity import format_bytes, format_cpu_millis
from .text import eq_ignore_ascii_case


def fits_in(want, available) -> bool:
    """True when ``want`` fits in ``available`` on every dimension, and its GPUs (if any) are
    of the model offered (letter case ignored; no model asked means any)."""
    if (
        want.cpu_millis > available.cpu_millis
        or want.memory_bytes > available.memory_bytes
        or want.storage_bytes > available.storage_bytes
        or want.gpus > available.gpus
    ):
        return False
    if want.gpus == 0 or want.gpu_model is None:
        return True
    return available.gpu_model is not None and eq_ignore_ascii_case(want.gpu_model, available.gpu_model)


def first_shortfall(want, available):
    """A sentence naming the first dimension ``want`` lacks in ``available``, or None."""
    if want.cpu_millis > available.cpu_millis:
        return f"cpu: asked {format_cpu_millis(want.cpu_millis)}, free {format_cpu_millis(available.cpu_millis)}"
    if want.memory_bytes > available.memory_bytes:
        return f"memory: asked {format_bytes(want.memory_bytes)}, free {format_bytes(available.memory_bytes)}"
    if want.storage_bytes > available.storage_bytes:
        return f"storage: asked {format_bytes(want.storage_bytes)}, free {format_bytes(available.storage_bytes)}"
    if want.gpus > available.gpus:
        return f"gpu: asked {want.gpus}, free {available.gpus}"
    # What fits_in checks beyond the four counts above, without checking them again.
    if (
        want.gpus != 0
        and want.gpu_model is not None
        and (available.gpu_model is None or not eq_ignore_ascii_case(want.gpu_model, available.gpu_model))
    ):
        return f"gpu model: asked {want.gpu_model or 'any'}, offered {available.gpu_model or 'none'}"
    return None
