"""Chunk plans, merging at boundaries, speaker carry-over, rendering (pure functions)."""

from hypothesis import given
from hypothesis import strategies as st

from core.pipeline.chunks import plan
from core.pipeline.merge import merge
from core.pipeline.render import TranscriptDoc, hms, to_markdown
from core.pipeline.speakers import profiles
from core.pipeline.transcribe.base import Segment


@given(
    st.floats(min_value=1, max_value=4 * 3600),
    st.integers(min_value=10, max_value=900),
    st.floats(min_value=0, max_value=5),
)
def test_plan_covers_everything_once(duration: float, size: int, overlap: float) -> None:
    chunks = plan(duration, size, overlap)
    assert chunks[0].start == 0 and abs(chunks[-1].end - duration) < 1e-6
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert a.end == b.start and b.cut_start <= b.start and a.cut_end >= a.end


def test_short_tail_joins_last_chunk_in_proportion() -> None:
    assert [c.end for c in plan(601.0, 600, 2)] == [601.0]  # 1 s tail: no own request
    assert [c.end for c in plan(606.0, 600, 2)] == [600.0, 606.0]
    assert [c.end for c in plan(15.2, 10, 1)] == [10.0, 15.2]  # test-sized chunks still split
    assert [c.end for c in plan(10.5, 10, 1)] == [10.5]


def test_boundary_sentence_kept_once_and_nothing_lost() -> None:
    chunks = plan(20.0, 10, 2)
    # chunk 0 cut 0..12, chunk 1 cut 8..20; a sentence at 9..11 is heard by both
    c0 = [Segment(1, 3, "first"), Segment(9, 11, "across the boundary")]
    c1 = [Segment(1, 3, "across the boundary"), Segment(5, 7, "second")]  # 9..11, 13..15
    merged = merge([(chunks[1], c1), (chunks[0], c0)])
    assert [s.text for s in merged] == ["first", "across the boundary", "second"]
    assert merged[2].start == 13


def test_speakers_carried_across_chunks() -> None:
    chunks = plan(20.0, 10, 2)
    c0 = [Segment(0, 9, "a talks", "A"), Segment(9, 12, "b starts", "B")]
    c1 = [Segment(1, 4, "b starts", "A"), Segment(4, 12, "a again", "B"), Segment(12, 12, "", None)]
    merged = merge([(chunks[0], c0), (chunks[1], c1)])
    by_text = {s.text: s.speaker for s in merged}
    assert by_text["a talks"] == "Speaker 1" and by_text["b starts"] == "Speaker 2"
    # chunk 1's local "A" heard "b starts" in the overlap: it is Speaker 2 there too
    assert by_text["a again"] == "Speaker 3"


def test_profiles_and_markdown() -> None:
    segs = [
        Segment(0, 5, "hello", "Speaker 1"),
        Segment(5, 6, "hi", "Speaker 2"),
        Segment(6, 10, "bye", "Speaker 1"),
    ]
    p = profiles(segs)
    assert p[0] == {
        "speaker": "Speaker 1",
        "talk_seconds": 9.0,
        "segments": 2,
        "first_seen": 0.0,
        "last_seen": 10.0,
    }
    doc = TranscriptDoc(
        "1AAAAAAAAAAAA",
        "T",
        "alice",
        "https://x.com/i/spaces/1AAAAAAAAAAAA",
        None,
        3725,
        "offline",
        ["alice"],
        p,
        segs,
    )
    md = to_markdown(doc)
    assert "# T" in md and "- Duration: 01:02:05" in md and "[00:00:05] Speaker 2: hi" in md
    assert hms(3725) == "01:02:05"
