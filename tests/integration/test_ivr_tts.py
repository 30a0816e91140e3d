"""Text prompts: rendered once by the TTS program, resampled to 8 kHz mono, then cached."""

from __future__ import annotations

import io
import math
import shutil
import struct
import sys
import wave
from pathlib import Path

import pytest

from dialer.agi_scripts.tts import TextPrompts, resample_wav

# A stand-in for espeak-ng: `-v VOICE --stdout TEXT` -> a 22050 Hz 16-bit WAV on stdout whose
# length depends on the text; every run is counted in a file next to it.
FAKE_TTS = r"""
import io, math, struct, sys, wave
args = sys.argv[1:]
assert args[0] == "-v" and args[2] == "--stdout", args
if args[3] == "FAIL":
    sys.exit(3)
with open(__file__ + ".runs", "a") as fh:
    fh.write(args[1] + "\n")
rate, n = 22050, 2205 * len(args[3])
buf = io.BytesIO()
with wave.open(buf, "wb") as w:
    w.setnchannels(1); w.setsampwidth(2); w.setframerate(rate)
    w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(i / 10))) for i in range(n)))
sys.stdout.buffer.write(buf.getvalue())
"""


def wav_info(path: Path) -> tuple[int, int, int, float]:
    with wave.open(str(path), "rb") as w:
        return (
            w.getnchannels(),
            w.getsampwidth(),
            w.getframerate(),
            w.getnframes() / w.getframerate(),
        )


async def test_render_resamples_and_caches(tmp_path: Path) -> None:
    script = tmp_path / "fake_tts.py"
    script.write_text(FAKE_TTS)
    tts = TextPrompts(tmp_path / "cache", command=[sys.executable, str(script)])
    name = await tts.render("hi", "नमस्ते")  # 6 code points -> 0.6 s
    assert name is not None and name.startswith(str(tmp_path / "cache" / "hi"))
    channels, width, rate, seconds = wav_info(Path(name + ".wav"))
    assert (channels, width, rate) == (1, 2, 8000) and abs(seconds - 0.6) < 0.01
    assert await tts.render("hi", "नमस्ते") == name  # cached: the program ran once
    assert (tmp_path / "fake_tts.py.runs").read_text().splitlines() == ["hi"]
    other = await tts.render("en", "hello")
    assert other is not None and other != name
    assert (tmp_path / "fake_tts.py.runs").read_text().splitlines() == ["hi", "en-gb"]


async def test_failure_or_no_program_gives_no_sound(tmp_path: Path) -> None:
    script = tmp_path / "fake_tts.py"
    script.write_text(FAKE_TTS)
    tts = TextPrompts(tmp_path / "cache", command=[sys.executable, str(script)])
    assert await tts.render("en", "FAIL") is None
    assert not list((tmp_path / "cache").rglob("*.wav"))
    silent = TextPrompts(tmp_path / "cache", command=[])
    assert not silent.available and await silent.render("en", "hello") is None


def test_resample_stereo_8bit_to_8k_mono() -> None:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(1)
        w.setframerate(16000)
        frames = b"".join(
            struct.pack("BB", 128 + int(100 * math.sin(i / 5)), 128) for i in range(16000)
        )
        w.writeframes(frames)
    out = resample_wav(buf.getvalue())
    with wave.open(io.BytesIO(out), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 8000)
        assert w.getnframes() == 8000
        samples = struct.unpack(f"<{w.getnframes()}h", w.readframes(w.getnframes()))
    # one channel carried a sine, the other silence: the mix keeps half the amplitude
    assert 11500 < max(samples) < 12900  # 100 steps of 8-bit = 25600, halved


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
async def test_real_espeak_ng_renders_the_shipped_prompts(tmp_path: Path) -> None:
    from dialer.agi_scripts.ivr import load_flows

    flows = load_flows(None)
    tts = TextPrompts(tmp_path)
    assert tts.available
    for lang in flows.languages:
        prompt = flows.prompt(lang, "welcome")
        assert prompt.text is not None
        name = await tts.render(lang, prompt.text)
        assert name is not None
        channels, width, rate, seconds = wav_info(Path(name + ".wav"))
        assert (channels, width, rate) == (1, 2, 8000) and 0.5 < seconds < 10
