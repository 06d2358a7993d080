"""The real ``spacescribe`` command, with X at the resolver seam pointed at a local HLS server.

``python -m tests.drills.app_proc <hls_base> run --roles …``: everything after the HLS base
URL is the CLI's own arguments, so configuration, logging, roles and shutdown are the ones an
operator gets; only the Space metadata and audio come from the test's HLS server instead of X.
"""

from __future__ import annotations

import sys
from typing import Any

from bot.cli import app
from core.context import Context
from tests.pipeline.conftest import LocalResolver


def _with_local_x(create: Any) -> Any:
    """``Context.create`` whose contexts resolve Spaces at the HLS server (the seam is the
    context's application object, ``ctx.wiring.resolver``)."""

    def made(*args: Any, **kwargs: Any) -> Context:
        ctx: Context = create(*args, **kwargs)
        ctx.wiring.resolver = LocalResolver(sys.argv[1])
        return ctx

    return staticmethod(made)


if __name__ == "__main__":
    Context.create = _with_local_x(Context.create)  # type: ignore[method-assign]
    app(args=sys.argv[2:], prog_name="spacescribe")
