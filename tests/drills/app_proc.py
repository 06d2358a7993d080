"""The real ``spacescribe`` command, with X at the resolver seam pointed at a local HLS server.

``python -m tests.drills.app_proc <hls_base> run --roles …``: everything after the HLS base
URL is the CLI's own arguments, so configuration, logging, roles and shutdown are the ones an
operator gets; only the Space metadata and audio come from the test's HLS server instead of X.
"""

from __future__ import annotations

import sys

from bot.cli import app
from core.pipeline import media
from tests.pipeline.conftest import LocalResolver

if __name__ == "__main__":
    media.use_resolver(LocalResolver(sys.argv[1]))
    app(args=sys.argv[2:], prog_name="spacescribe")
