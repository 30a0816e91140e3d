"""Text prompts rendered to 8 kHz mono 16-bit WAV with espeak-ng, cached by content.

Optional: when espeak-ng is not installed a text prompt has no sound and the IVR plays its
``file`` instead, or nothing (the caller still hears the other prompts and can press keys).
Asterisk plays ``<cache>/<lang>/<sha>`` (no extension; it finds the ``.wav``), so the cache
directory must be readable by Asterisk at the same path (same host, or a shared mount).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import os
import shutil
import tempfile
import wave
from collections.abc import Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

TARGET_RATE = 8000
_VOICES = {"hi": "hi", "en": "en-gb"}  # espeak-ng voice per language code


def resample_wav(data: bytes, rate: int = TARGET_RATE) -> bytes:
    """Any PCM WAV (8/16-bit, mono or stereo) -> mono 16-bit WAV at ``rate`` Hz."""
    with wave.open(io.BytesIO(data), "rb") as src:
        channels, width, src_rate = src.getnchannels(), src.getsampwidth(), src.getframerate()
        frames = src.readframes(src.getnframes())
    if width == 2:
        samples = np.frombuffer(frames, dtype="<i2").astype(np.float64)
    elif width == 1:
        samples = (np.frombuffer(frames, dtype=np.uint8).astype(np.float64) - 128.0) * 256.0
    else:
        raise ValueError(f"unsupported sample width {width}")
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    if src_rate != rate and len(samples):
        # Average over each output sample's span first (a crude low-pass against aliasing),
        # then interpolate: speech for the phone needs nothing finer.
        step = src_rate / rate
        if step > 1:
            k = int(step)
            kernel = np.ones(k) / k
            samples = np.convolve(samples, kernel, mode="same")
        n_out = int(len(samples) * rate / src_rate)
        positions = np.arange(n_out) * (src_rate / rate)
        samples = np.interp(positions, np.arange(len(samples)), samples)
    out = io.BytesIO()
    with wave.open(out, "wb") as dst:
        dst.setnchannels(1)
        dst.setsampwidth(2)
        dst.setframerate(rate)
        dst.writeframes(np.clip(samples, -32768, 32767).astype("<i2").tobytes())
    return out.getvalue()


class TextPrompts:
    """Renders and caches text prompts; ``command`` is the TTS program and its fixed options."""

    def __init__(
        self,
        cache_dir: str | os.PathLike[str],
        command: Sequence[str] | None = None,
        timeout: float = 20.0,
    ) -> None:
        """``command`` None: espeak-ng if installed, else text prompts stay silent."""
        self.cache_dir = Path(cache_dir)
        if command is None:
            exe = shutil.which("espeak-ng")
            command = [exe] if exe else []
        self.command = list(command)
        self.timeout = timeout
        self._locks: dict[str, asyncio.Lock] = {}

    @property
    def available(self) -> bool:
        """True when a TTS program is configured."""
        return bool(self.command)

    def path_for(self, language: str, text: str) -> Path:
        """Where the rendering of ``text`` in ``language`` lives (without ``.wav``)."""
        digest = hashlib.sha256(f"{language}\0{text}".encode()).hexdigest()[:24]
        return self.cache_dir / language / digest

    async def render(self, language: str, text: str) -> str | None:
        """The Asterisk file name for ``text`` (rendering it once), or None if not possible."""
        if not self.command:
            return None
        target = self.path_for(language, text)
        wav = target.with_suffix(".wav")
        if wav.exists():
            return str(target)
        lock = self._locks.setdefault(str(target), asyncio.Lock())
        async with lock:
            if wav.exists():
                return str(target)
            data = await self._run(language, text)
            if data is None:
                return None
            try:
                converted = resample_wav(data)
            except (wave.Error, ValueError, EOFError) as exc:
                log.warning("TTS output for a %s prompt is not usable WAV: %s", language, exc)
                return None
            wav.parent.mkdir(parents=True, exist_ok=True)
            # write-then-rename: Asterisk never sees half a file
            fd, tmp = tempfile.mkstemp(dir=wav.parent, suffix=".tmp")
            with os.fdopen(fd, "wb") as fh:
                fh.write(converted)
            os.replace(tmp, wav)
        return str(target)

    async def _run(self, language: str, text: str) -> bytes | None:
        voice = _VOICES.get(language, language)
        proc = await asyncio.create_subprocess_exec(
            *self.command,
            "-v",
            voice,
            "--stdout",
            text,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), self.timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            log.warning("TTS took longer than %s s for a %s prompt", self.timeout, language)
            return None
        if proc.returncode != 0 or not out:
            log.warning("TTS failed (%s): %s", proc.returncode, err.decode(errors="replace")[:200])
            return None
        return out
