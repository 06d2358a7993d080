"""Enrichment units without a database: the verbatim check, the extractive method, the
subtitle files (validated by the ``srt`` and ``webvtt-py`` parsers), prompt splitting and the
overview's length limits."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
import srt
import webvtt

from core.chat import tokens
from core.enrich import extractive, structured
from core.enrich.model import Chapter, Enrichment, NotableQuote, Takeaway, normalise_chapters
from core.enrich.text import markdown_block, overview
from core.enrich.verify import SegmentIndex, verified, verify
from core.pipeline.subtitles import cues, to_srt, to_vtt
from tests.enrich.synth import make_space

MAX_LINE, MAX_SECONDS = 42, 7.0  # the spec's cue rules (not the module's constants)

SEGS = [
    {
        "start": 10.0,
        "end": 16.0,
        "speaker": "Alice",
        "text": "We moved the launch to March, finally.",
    },
    {
        "start": 16.5,
        "end": 22.0,
        "speaker": "Bob",
        "text": "And the audit is done, no issues found.",
    },
    {"start": 400.0, "end": 405.0, "speaker": "Alice", "text": "Fees will drop by half next year."},
]


def test_a_verbatim_quote_is_kept_in_the_transcripts_own_words() -> None:
    idx = SegmentIndex(SEGS)
    q = verify(NotableQuote("Someone", 12, "we moved the LAUNCH to march finally"), idx)
    assert q == NotableQuote("Alice", 10.0, "We moved the launch to March, finally.")


@pytest.mark.parametrize(
    "candidate",
    [
        NotableQuote("Alice", 12, "We moved the launch to April, finally."),  # a changed word
        NotableQuote("Alice", 12, "We postponed the launch to March."),  # paraphrase
        NotableQuote("Alice", 300, "Fees will drop by half next year."),  # said, but not then
        NotableQuote("Alice", 14, "to March, finally. And the audit is done"),  # two speakers
        NotableQuote("Alice", 12, "the launch"),  # too short to be a quote
    ],
)
def test_a_quote_not_found_verbatim_around_its_time_is_dropped(candidate: NotableQuote) -> None:
    assert verify(candidate, SegmentIndex(SEGS)) is None
    kept, dropped = verified([candidate], SEGS, 5)
    assert (kept, dropped) == ([], 1)


def test_chapters_are_normalised_to_cover_the_space_in_order() -> None:
    out = normalise_chapters(
        [Chapter("B", 600, 0), Chapter("A", 30, 0), Chapter(" ", 700, 0), Chapter("C", 5000, 0)],
        3600,
    )
    assert [(c.title, c.start, c.end) for c in out] == [
        ("A", 0, 600),
        ("B", 600, 3600),
        ("C", 3600, 3600),
    ]


def test_extractive_finds_topic_shifts_and_spreads_takeaways() -> None:
    segs, changes = make_space(2.0, seed=3)
    e = extractive.enrich(segs, 7200)
    assert e.method == "extractive" and e.extractive
    starts = [c.start for c in e.chapters]
    assert (
        starts[0] == 0
        and starts == sorted(starts)
        and e.chapters[-1].end == max(7200, segs[-1]["end"])
    )
    assert all(a.end == b.start for a, b in zip(e.chapters, e.chapters[1:], strict=False))
    # every true topic change has a chapter start within two minutes of it
    for at, _topic in changes[1:]:
        assert min(abs(at - s) for s in starts) <= 120, (at, starts)
    assert 5 <= len(e.takeaways) <= 8
    assert [t.start for t in e.takeaways] == sorted(t.start for t in e.takeaways)
    said = {" ".join(s["text"].split()) for s in segs}
    for t in e.takeaways:  # extracted: each takeaway is a sentence said at its timestamp
        assert any(t.text[1:] in s for s in said)
    assert e.quotes and all(verify(q, SegmentIndex(segs)) == q for q in e.quotes)
    md = "\n".join(markdown_block(e.to_json()))
    assert "Extractive overview" in md and "### Chapters" in md


def test_offline_enrichment_of_a_three_hour_space_takes_under_five_seconds() -> None:
    segs, _ = make_space(3.0)
    t0 = time.process_time()  # CPU time: not the machine's other load
    e = extractive.enrich(segs, 3 * 3600)
    assert time.process_time() - t0 <= 5.0
    assert len(e.chapters) >= 8


def test_no_speech_gives_one_chapter_and_nothing_made_up() -> None:
    e = extractive.enrich([], 90)
    assert (e.takeaways, e.quotes) == ([], [])
    assert [(c.start, c.end) for c in e.chapters] == [(0, 90)]


def test_subtitles_parse_and_keep_the_cue_rules(tmp_path: Path) -> None:
    segs, _ = make_space(0.2, seed=5)
    segs.append({"start": 800.0, "end": 830.0, "speaker": None, "text": "x" * 100 + " --> end"})
    subs = list(srt.parse(to_srt(segs)))
    vtt = webvtt.from_buffer(io.StringIO(to_vtt(segs)))
    assert len(subs) == len(vtt.captions) == len(cues(segs)) > 50
    for s in subs:
        lines = s.content.split("\n")
        assert 1 <= len(lines) <= 2 and all(len(x) <= MAX_LINE for x in lines), lines
        assert 0 < (s.end - s.start).total_seconds() <= MAX_SECONDS
    starts = [s.start for s in subs]
    assert starts == sorted(starts)
    assert all(a.end <= b.start for a, b in zip(subs, subs[1:], strict=False))
    assert subs[0].content.startswith(f"{segs[0]['speaker']}:")
    # every word said is in the subtitles, in order
    words = " ".join(s["text"] for s in segs[:-1]).split()
    shown = " ".join(s.content.replace("\n", " ") for s in subs).split()
    shown = [
        w for w in shown if not w.endswith(":") or w[:-1] not in {"Alice", "Bob", "Carol", "Dmitri"}
    ]
    assert shown[: len(words)] == words
    for c in vtt.captions:
        assert len(c.lines) <= 2 and all(len(x) <= MAX_LINE for x in c.lines)


def test_prompt_parts_stay_within_the_budget() -> None:
    segs, _ = make_space(3.0)
    paras = structured.lines(segs)
    parts = structured.split(paras, 7000, "gpt-4o-mini")
    sizes = [sum(tokens.count(t, "gpt-4o-mini") + 1 for _s, t in p) for p in parts]
    assert len(parts) >= 4 and max(sizes) <= 7000
    assert max(sizes) - min(sizes) < 1500  # about equal parts, no tiny last one
    assert [t for p in parts for t in p] == paras


def test_timestamps_from_the_model_are_checked() -> None:
    assert structured.seconds("1:02:03") == 3723 and structured.seconds("12:34") == 754
    for bad in ("soon", "1:99:00", "", "12"):
        with pytest.raises(ValueError):
            structured.seconds(bad)


def test_overview_fits_telegram_and_discord_limits() -> None:
    e = Enrichment(
        "openai",
        "m",
        [Takeaway("word " * 120, i * 60.0) for i in range(8)],
        [Chapter(f"Chapter {i} " + "t" * 80, i * 100.0, i * 100.0 + 100) for i in range(40)],
        [],
    )
    for limit in (4096, 2000):
        text = overview(e, limit, bold=lambda s: f"<b>{s}</b>", escape=lambda s: s)
        assert 0 < len(text) <= limit and "Key takeaways" in text and "Chapters" in text
    short = overview(e, 2000, bold=lambda s: s, escape=lambda s: s)
    assert "more in the transcript" in short


def test_speakers_named_by_x_are_listed_and_labels_never_guessed() -> None:
    from core.pipeline.media import meta_from_info
    from core.pipeline.speakers import participants
    from core.pipeline.transcribe.base import Segment

    info = {
        "title": "T",
        "uploader": "Mary Barra",
        "uploader_id": "mtbarra",
        "description": "Twitter Space participated by Mary Barra, Elon Musk, Jo  Doe",
    }
    meta = meta_from_info("1ABCDEFGHIJKL", info, "u")
    assert meta.creator == "mtbarra" and meta.speakers == ("Elon Musk", "Jo Doe")
    assert meta_from_info("1ABCDEFGHIJKL", {"description": "x"}, "u").speakers == ()
    nobody = {"description": "Twitter Space participated by nobody yet"}
    assert meta_from_info("1ABCDEFGHIJKL", nobody, "u").speakers == ()
    segs = [Segment(0, 1, "hi", "Speaker 1"), Segment(1, 2, "yo", "Speaker 2")]
    names = participants(segs, meta.creator, meta.speakers)
    assert names == ["mtbarra", "Elon Musk", "Jo Doe", "Speaker 1", "Speaker 2"]
    assert [s.speaker for s in segs] == ["Speaker 1", "Speaker 2"]  # labels stay labels
