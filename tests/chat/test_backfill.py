"""Indexing Spaces completed before the chat index: function and `spacescribe chat-index`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from core.chat.backfill import backfill
from core.chat.index import passage_count
from core.context import Context
from core.pipeline.storage import SpaceFiles
from tests.chat.helpers import add_space, space_id_for
from tests.test_cli import _env

SEGMENTS = [
    {"start": 0.0, "end": 5.0, "speaker": "Ann", "text": "hello there"},
    {"start": 70.0, "end": 75.0, "speaker": "Bob", "text": "the quokka budget"},
]


def write_json(root: Path, sid: str) -> None:
    f = SpaceFiles.of(root, sid).json
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(json.dumps({"space_id": sid, "segments": SEGMENTS}), encoding="utf-8")


async def test_backfill_indexes_missing_once_and_reports_absent_files(ctx: Context) -> None:
    a = await add_space(ctx, 1, [])
    await add_space(ctx, 2, [])
    await add_space(ctx, 3, [], status="processing")
    write_json(ctx.spaces_dir, space_id_for(1))
    write_json(ctx.spaces_dir, space_id_for(3))
    rep = await backfill(ctx)
    assert rep.indexed == {space_id_for(1): 2} and rep.missing == [space_id_for(2)]
    again = await backfill(ctx)  # already indexed: skipped unless forced
    assert again.indexed == {} and again.missing == [space_id_for(2)]
    forced = await backfill(ctx, [space_id_for(1)], force=True)
    assert forced.indexed == {space_id_for(1): 2}
    async with ctx.db.session() as s:
        assert await passage_count(s, a) == 2


async def test_cli_chat_index(ctx: Context, tmp_path: Path, db_url: str) -> None:
    await add_space(ctx, 1, [])
    write_json(ctx.spaces_dir, space_id_for(1))
    env = _env(tmp_path, db_url)
    out = subprocess.run(
        [sys.executable, "-m", "bot.cli", "chat-index"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert f"{space_id_for(1)}: 2 passages" in out.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "bot.cli", "chat-index", "../etc"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "Space" in bad.stderr
