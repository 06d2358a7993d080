"""Offline Whisper on real speech (LibriVox clips with their reference text, espeak-ng voices
without pauses), the paragraph rules of transcript.md, the pinned weights, and the OpenAI
backend sending only speech with its times mapped back. The model loads once per session."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from pydantic import SecretStr

from core.config import Secrets, load_settings
from core.pipeline import local, render
from core.pipeline.errors import PipelineError
from core.pipeline.render import paragraphs
from core.pipeline.run import transcribe_audio
from core.pipeline.storage import SpaceFiles
from core.pipeline.transcribe import whisper_model
from core.pipeline.transcribe.base import Segment, ends_sentence
from core.pipeline.transcribe.offline import OfflineTranscriber
from core.pipeline.transcribe.speech import SAMPLE_RATE, TimeMap
from tests.stand_ins.audio import concat_wavs, speech_wav
from tests.stand_ins.openai_audio import OpenAIAudio, bursts, decode_pcm, openai_audio
from tests.wer import librivox_clips, wer

# ~43 s of two alternating voices, no pause between them (the speakers' turns run together)
TALK = [
    "Welcome back to the show. Today we are talking about the price of bread in the city.",
    "Thank you for having me. The price of bread went up again this month, and people notice.",
    "Why did it go up? Is it the weather, or is it the cost of moving flour around?",
    "Mostly the weather. The summer was dry, so the harvest was small and the flour cost more.",
    "That makes sense. What do the bakers say about it? Are they raising prices as well?",
    "Some of them are. Others keep their prices and make smaller loaves instead of bigger ones.",
    "Smaller loaves for the same money. I think many listeners will not be happy to hear that.",
    "No, they will not. But the good news is that the next harvest looks much better so far.",
]
VOICES = ["en-us", "en-gb"]


@pytest.fixture(scope="session")
def offline() -> OfflineTranscriber:
    return OfflineTranscriber(concurrency=2)


@pytest.fixture(scope="session")
def talk_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("talk")
    parts = []
    for i, text in enumerate(TALK):
        out = d / f"t{i}.wav"
        subprocess.run(
            ["espeak-ng", "-v", VOICES[i % 2], "-s", "165", "-w", str(out), text],
            check=True,
            capture_output=True,
        )
        parts.append(out)
    return concat_wavs(parts, d / "talk.wav", gap_seconds=0.0)


def test_wer_counts_substitutions_insertions_and_deletions() -> None:
    assert wer(["the cat sat"], ["the cat sat"]) == 0
    assert wer(["the cat sat"], ["the bat sat down"]) == pytest.approx(2 / 3)
    assert wer(["mister john dashwood"], ["Mr. John Dashwood."]) == 0


def test_sentence_ends() -> None:
    assert ends_sentence("It rained.") and ends_sentence('He said "no."') and ends_sentence("Why?")
    assert not ends_sentence("Mr.") and not ends_sentence("J.") and not ends_sentence("and then")


async def test_tiny_en_on_real_human_speech(offline: OfflineTranscriber) -> None:
    clips = librivox_clips()
    assert len(clips) == 5, "Debian pocketsphinx-testdata is missing (make setup-test)"
    hyps = [" ".join(s.text for s in await offline.transcribe(wav, 0)) for wav, _ in clips]
    score = wer([ref for _, ref in clips], hyps)
    assert score <= 0.08, (score, hyps)


async def test_paragraphs_on_speech_without_pauses(
    offline: OfflineTranscriber, talk_wav: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The 60 s rule scaled down to 15 s so that 43 s of speech (short, for the suite's time)
    needs several cuts; test_paragraph_rules checks the 60 s figure itself."""
    limit = 15.0
    monkeypatch.setattr(render, "MAX_PARAGRAPH_SECONDS", limit)
    settings = load_settings(
        data_dir=tmp_path / "data",
        transcription={
            "backend": "offline",
            "chunk_seconds": 40,
            "overlap_seconds": 2,
            "concurrency": 2,
        },
    )
    files = SpaceFiles.of(settings.spaces_dir, local.local_id(talk_wav))
    await local.import_audio(talk_wav, files)
    result = await transcribe_audio(
        settings, Secrets.model_construct(), files, title="talk", transcriber=offline
    )
    md = files.markdown.read_text()
    assert "- Speakers: not detected" in md and "Speaker" not in md.split("- Space:")[1]
    paras = re.findall(r"^\[(\d\d):(\d\d):(\d\d)\] (.+)$", md, re.MULTILINE)
    starts = [int(h) * 3600 + int(m) * 60 + int(s) for h, m, s, _ in paras]
    assert result.doc.duration_seconds > 40 and len(paras) >= 3, md
    spans = [(seg.start, seg.end) for seg in result.doc.segments]
    # each paragraph's speech (from its first to its last segment) fits in the limit
    bounds = [*starts[1:], 1e9]
    for a, b in zip(starts, bounds, strict=True):
        inside = [(x, y) for x, y in spans if a - 1 <= x < b]
        assert inside and inside[-1][1] - inside[0][0] <= limit + 0.01, (a, inside)
    assert all(ends_sentence(text) for *_, text in paras[:-1]), paras
    # every segment is in transcript.json and in the text, once (chunks merged, none doubled)
    seg_text = " ".join(s.text for s in result.doc.segments)
    assert " ".join(text for *_, text in paras) == seg_text
    assert wer([" ".join(TALK)], [seg_text]) <= 0.15, seg_text


def test_paragraph_rules() -> None:
    def s(a: float, b: float, text: str, spk: str | None = None) -> Segment:
        return Segment(a, b, text, spk)

    # speaker changes without a pause: a new paragraph each time
    p = paragraphs([s(0, 5, "Hi.", "A"), s(5, 9, "Hello.", "B"), s(9, 12, "Yes.", "A")])
    assert [x[1] for x in p] == ["A", "B", "A"]
    # 25 s sentences back to back: cut before 60 s, after a sentence end
    p = paragraphs([s(0, 25, "One."), s(25, 50, "Two and"), s(50, 55, "more."), s(55, 80, "3.")])
    assert [(x[0], x[2]) for x in p] == [(0, "One. Two and more."), (55, "3.")]
    # the last sentence end is earlier: the unfinished sentence moves to the new paragraph
    p = paragraphs([s(0, 30, "One."), s(30, 55, "Two and"), s(55, 65, "more.")])
    assert [(x[0], x[2]) for x in p] == [(0, "One."), (30, "Two and more.")]
    # no sentence end at all: cut at a segment boundary
    p = paragraphs([s(0, 40, "a"), s(40, 80, "b")])
    assert [x[0] for x in p] == [0, 40]


def test_refuses_weights_that_do_not_match_the_pinned_hash(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real = whisper_model.MODELS["tiny.en"]
    forged = whisper_model.ModelSpec("tiny.en", "0" * 64, True, real.install_hint)
    monkeypatch.setattr(whisper_model, "_loaded", {})
    monkeypatch.setitem(whisper_model.MODELS, "tiny.en", forged)
    with pytest.raises(PipelineError, match="does not match its pinned SHA-256") as e:
        whisper_model.load("tiny.en", tmp_path, 1)
    assert not e.value.retryable
    with pytest.raises(PipelineError, match="only knows English"):
        OfflineTranscriber(model="tiny.en", language="de")


def test_time_map_puts_times_back_on_the_recording() -> None:
    sr = SAMPLE_RATE
    m = TimeMap(((1 * sr, 2 * sr), (5 * sr, 6 * sr)))  # kept: 1–2 s and 5–6 s
    assert m.kept_seconds == 2
    assert m.original(0.5) == 1.5 and m.original(1.5) == 5.5
    assert m.original(1.0) == 5.0  # a start on the joint: the region that starts there
    assert m.original_end(1.0) == 2.0  # an end on the joint: the region that ends there
    assert m.original_end(2.0) == 6.0 and m.original_end(9.0) == 6.0


async def test_openai_gets_only_speech_and_times_map_back(tmp_path: Path) -> None:
    parts = [
        speech_wav("Good morning and welcome to the space.", tmp_path / "a.wav"),
        speech_wav("We waited a long time for this guest.", tmp_path / "b.wav"),
        speech_wav("Thank you and good night.", tmp_path / "c.wav"),
    ]
    wav = concat_wavs(parts, tmp_path / "pauses.wav", gap_seconds=15.0)
    settings = load_settings(
        data_dir=tmp_path / "data",
        transcription={"backend": "openai", "chunk_seconds": 600, "language": "en"},
    )
    files = SpaceFiles.of(settings.spaces_dir, local.local_id(wav))
    await local.import_audio(wav, files)
    async with openai_audio(OpenAIAudio(bursts=True)) as stt:
        secrets = Secrets.model_construct(
            openai_api_key=SecretStr("sk-test-stand-in"), openai_base_url=stt.url
        )
        result = await transcribe_audio(settings, secrets, files, title="pauses")
    # what the recording really has, found the same way on the full audio
    truth = bursts(decode_pcm(files.audio.read_bytes(), ".m4a"))
    got = [(s.start, s.end) for s in result.doc.segments]
    assert len(truth) == 3 and len(got) == 3, (truth, got)
    for (t0, t1), (g0, g1) in zip(truth, got, strict=True):
        assert abs(t0 - g0) <= 0.1 and abs(t1 - g1) <= 0.1, (truth, got)
    [req] = stt.requests
    assert req["language"] == "en" and req["filename"].endswith(".m4a")
    # 3 phrases of ~2–3 s and two 15 s pauses: the pauses are not sent (billed)
    assert req["seconds"] < 0.5 * result.doc.duration_seconds, req
    assert not list(files.chunks.glob("*.wav")) and not list(files.chunks.glob("*.m4a"))
