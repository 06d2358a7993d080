"""Pipeline overhead without speech-to-text (probe, chunk, merge, render), 30 min vs 2 h.

Each run is a separate process, so its peak RSS (``ru_maxrss`` of the process and of its
ffmpeg children) is its own. Targets: 2 h ≤ 20 s, peak RSS ≤ 300 MB and flat from 30 min
to 2 h. Chunks are cut as the OpenAI backend cuts them (AAC stream copy) and as the offline
backend does (16 kHz PCM); a null transcriber returns a segment per 10 s instantly.
"""

from __future__ import annotations

import asyncio
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench._audio import long_audio


class NullTranscriber:
    name = "null"
    diarizes = False

    def __init__(self, fmt: str) -> None:
        self.chunk_format = fmt

    async def transcribe(self, audio: Path, duration: float):  # type: ignore[no-untyped-def]
        from core.pipeline.transcribe.base import Segment

        return [
            Segment(t, t + 9.5, f"words at {t:.0f} seconds", None)
            for t in range(0, int(duration), 10)
        ]


def child(audio: str, fmt: str) -> None:
    from core.config import Secrets, load_settings
    from core.pipeline.run import transcribe_audio
    from core.pipeline.storage import SpaceFiles

    data = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    try:
        settings = load_settings(data_dir=data)
        files = SpaceFiles.of(settings.spaces_dir, "1BENCHBENCH01")
        files.root.mkdir(parents=True)
        shutil.copy(audio, files.audio)
        t0 = time.perf_counter()
        res = asyncio.run(
            transcribe_audio(
                settings,
                Secrets.model_construct(),
                files,
                title="bench",
                transcriber=NullTranscriber(fmt),
            )
        )
        took = time.perf_counter() - t0
    finally:
        shutil.rmtree(data, ignore_errors=True)
    rss_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rss_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "seconds": took,
                "rss_mb": rss_self,
                "ffmpeg_rss_mb": rss_children,
                "segments": len(res.doc.segments),
            }
        )
    )


def _tree_rss_mb(root: int) -> float:
    """Summed VmRSS of a process and all its descendants, from /proc (Linux)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    total_kb, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(parents.get(pid, []))
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
        except OSError:
            continue
    return total_kb / 1024


def measure(audio: Path, fmt: str) -> dict[str, float]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.pipeline", "--child", str(audio), fmt],
        stdout=subprocess.PIPE,
        text=True,
    )
    peak = 0.0
    done = threading.Event()

    def sample() -> None:  # whole process tree, python + every ffmpeg alive at that moment
        nonlocal peak
        while not done.wait(0.02):
            peak = max(peak, _tree_rss_mb(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    done.set()
    sampler.join()
    if proc.returncode:
        raise SystemExit(f"bench child failed ({proc.returncode})")
    return {**json.loads(out.strip().splitlines()[-1]), "tree_mb": peak}


def main() -> None:
    print("generating audio (cached after the first run) ...", flush=True)
    short, hour, long = long_audio(30 * 60), long_audio(3600), long_audio(2 * 3600)
    print(
        f"{'chunks':<16}{'audio':>7}{'wall s':>9}{'python MB':>11}{'ffmpeg MB':>11}{'tree MB':>9}"
    )
    results = {}
    for fmt, label in (("m4a", "openai (copy)"), ("wav", "offline (pcm)")):
        for name, audio in (("30 min", short), ("1 h", hour), ("2 h", long)):
            r = measure(audio, fmt)
            results[(fmt, name)] = r
            print(
                f"{label:<16}{name:>7}{r['seconds']:>9.2f}{r['rss_mb']:>11.0f}"
                f"{r['ffmpeg_rss_mb']:>11.0f}{r['tree_mb']:>9.0f}",
                flush=True,
            )
    for fmt, label in (("m4a", "openai"), ("wav", "offline")):
        a, b = results[(fmt, "30 min")], results[(fmt, "2 h")]
        print(
            f"{label}: 2 h / 30 min wall = {b['seconds'] / a['seconds']:.2f}× (audio 4×), "
            f"peak RSS 2 h / 30 min = {b['rss_mb'] / a['rss_mb']:.2f}× (python), "
            f"{b['ffmpeg_rss_mb'] / max(1.0, a['ffmpeg_rss_mb']):.2f}× (ffmpeg), "
            f"{b['tree_mb'] / max(1.0, a['tree_mb']):.2f}× (whole tree, peak {b['tree_mb']:.0f} MB)"
        )
        h = results[(fmt, "1 h")]
        # the tree holds python + up to `concurrency` ffmpeg cutters: it stops growing once
        # the audio has at least that many chunks (30 min = 3 chunks, 1 h = 6)
        print(f"{label}: whole-tree peak 2 h / 1 h = {b['tree_mb'] / max(1.0, h['tree_mb']):.2f}×")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
    else:
        main()
