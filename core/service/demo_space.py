"""The demo Space of test mode: something a newcomer can buy offline on a fresh machine.

At the first start in test mode, a short three-voice conversation is spoken by espeak-ng
(installed by ``scripts/ensure-system-deps.sh``), joined with ffmpeg and imported through
the operator's import path (:func:`core.service.imports.import_recording`): the worker
transcribes it with the real offline pipeline, and it is sold like any other Space. It is
made once (its ``spaces`` row survives restarts); live mode never makes it.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from core.context import Context
from core.logging import get_logger
from core.pipeline import ffmpeg
from core.results import Refused
from core.service.catalog import find_space
from core.service.imports import Metadata, import_recording
from core.statuses import SpaceStatus

log = get_logger("spacescribe.demo")

# A syntactically valid Space id that is clearly ours (X ids never spell words).
DEMO_SPACE_ID = "1DEMOSPACEtst"
DEMO_TITLE = "Demo Space (test mode): a lighthouse keeper, a baker and a bike mechanic"
DEMO_CREATOR = "spacescribe demo"
PAUSE_SECONDS = 0.6

# (espeak-ng voice, line): several voices, so it reads as a conversation
SCRIPT: tuple[tuple[str, str], ...] = (
    ("en-us+m3", "Welcome to the demo space. Three of us talk about our work today."),
    ("en-gb-x-rp", "I keep the lighthouse on the northern cape. The lamp turns every ten seconds."),
    ("en-us", "I am a baker. I bake sourdough bread every morning at four."),
    ("en-us+f4", "And I repair bikes. Most flat tyres happen in the rainy season."),
    ("en-us+m3", "What is the hardest part of keeping a lighthouse?"),
    ("en-gb-x-rp", "Storms. In a storm I climb the stairs twice an hour to check the lamp."),
    ("en-us", "For bread the hardest part is patience. The dough rises for twelve hours."),
    ("en-us+f4", "For bikes the enemy is rust. Keep the chain dry and oil it every month."),
    ("en-us+m3", "Thank you all. This was the spacescribe demo space."),
)


@dataclass(frozen=True)
class DemoSpace:
    space_id: str
    status: str
    made_now: bool


def espeak() -> str | None:
    return shutil.which("espeak-ng")


async def _say(exe: str, voice: str, text: str, out: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        exe,
        "-v",
        voice,
        "-s",
        "140",
        "-w",
        str(out),
        text,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    if proc.returncode != 0 or not out.is_file():
        raise RuntimeError(f"espeak-ng failed: {err.decode(errors='replace').strip()[:200]}")


async def synthesize(folder: Path) -> Path:
    """The conversation as one mono 16 kHz WAV file in ``folder``."""
    exe = espeak()
    if exe is None:
        raise RuntimeError("espeak-ng is not installed (scripts/ensure-system-deps.sh)")
    parts = []
    for i, (voice, line) in enumerate(SCRIPT):
        part = folder / f"line{i:02d}.wav"
        await _say(exe, voice, line, part)
        parts.append(part)
    # each line resampled to 16 kHz mono and followed by a short pause, then all joined
    inputs: list[str] = []
    for p in parts:
        inputs += ["-i", str(p)]
    chains = "".join(
        f"[{i}:a]aresample=16000,aformat=channel_layouts=mono,apad=pad_dur={PAUSE_SECONDS}[a{i}];"
        for i in range(len(parts))
    )
    joined = "".join(f"[a{i}]" for i in range(len(parts)))
    out = folder / "demo.wav"
    await ffmpeg.run(
        "-y",
        *inputs,
        "-filter_complex",
        f"{chains}{joined}concat=n={len(parts)}:v=0:a=1[out]",
        "-map",
        "[out]",
        "-ar",
        "16000",
        "-ac",
        "1",
        str(out),
    )
    return out


async def ensure_demo_space(ctx: Context) -> DemoSpace | Refused:
    """Make the demo Space unless it exists (any state but failed). Test mode only."""
    if not ctx.settings.payments.test_mode:
        return Refused("live_mode", "The demo Space exists only in test mode.")
    async with ctx.db.read() as s:
        space = await find_space(s, DEMO_SPACE_ID)
    if space is not None and space.status != SpaceStatus.FAILED:
        return DemoSpace(DEMO_SPACE_ID, space.status, False)
    with tempfile.TemporaryDirectory(prefix="spacescribe-demo-") as tmp:
        try:
            audio = await synthesize(Path(tmp))
        except RuntimeError as e:
            return Refused("demo_unavailable", str(e))
        result = await import_recording(
            ctx,
            None,  # as the operator: no caller
            DEMO_SPACE_ID,
            audio,
            name="the demo conversation",
            meta=Metadata(title=DEMO_TITLE, creator=DEMO_CREATOR),
            force=space is not None,
        )
    if isinstance(result, Refused):
        return result
    log.info("demo space imported", space=DEMO_SPACE_ID, seconds=round(result.duration_seconds))
    return DemoSpace(DEMO_SPACE_ID, result.space.status, True)


def is_demo(space_id: str) -> bool:
    return space_id == DEMO_SPACE_ID
