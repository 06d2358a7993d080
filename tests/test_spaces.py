from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.spaces import (
    SPACE_ID_RE,
    InvalidSpace,
    canonical_url,
    parse_space,
    space_dir,
)

SID = "1RDxlAoOeQRKL"


@pytest.mark.parametrize(
    "text",
    [
        SID,
        f"  {SID}  ",
        f"https://x.com/i/spaces/{SID}",
        f"https://twitter.com/i/spaces/{SID}",
        f"https://mobile.twitter.com/i/spaces/{SID}",
        f"https://mobile.x.com/i/spaces/{SID}?s=20",
        f"https://x.com/i/spaces/{SID}/peek",
        f"x.com/i/spaces/{SID}",
        f"<https://x.com/i/spaces/{SID}>",
        f"http://www.twitter.com/i/spaces/{SID}/?t=abc#frag",
    ],
)
def test_accepts(text: str) -> None:
    assert parse_space(text) == SID
    assert canonical_url(parse_space(text)) == f"https://x.com/i/spaces/{SID}"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "1RDxlAoOeQRK",  # 12
        "1RDxlAoOeQRKLL",  # 14
        "../../etc/passwd",
        f"https://evil.com/i/spaces/{SID}",
        f"https://x.com.evil.com/i/spaces/{SID}",
        f"https://x.com@evil.com/i/spaces/{SID}",
        f"https://user@x.com/i/spaces/{SID}",
        f"https://x.com/i/broadcasts/{SID}",
        f"https://x.com/elonmusk/status/{SID}",
        f"ftp://x.com/i/spaces/{SID}",
        f"https://x.com:8443/i/spaces/{SID}",
        "https://x.com/i/spaces/../../etc",
        "https://x.com/i/spaces/1RDxlAoOeQRK%2F",
        "file:///etc/passwd",
        "http://127.0.0.1/i/spaces/" + SID,
        "1RDxlAoOeQR/L",
        "x" * 5000,
    ],
)
def test_rejects_with_help(text: str) -> None:
    with pytest.raises(InvalidSpace) as err:
        parse_space(text)
    assert "x.com/i/spaces/" in str(err.value)


@given(st.text(max_size=200))
def test_any_input_is_refused_or_canonical(text: str) -> None:
    try:
        sid = parse_space(text)
    except InvalidSpace:
        return
    assert SPACE_ID_RE.fullmatch(sid)
    assert canonical_url(sid) == "https://x.com/i/spaces/" + sid


@given(st.text(max_size=40))
def test_no_id_escapes_data_dir(text: str) -> None:
    root = Path("/tmp/spacescribe-root/spaces")
    try:
        d = space_dir(root, text)
    except InvalidSpace:
        return
    assert d.parent == root.resolve()
