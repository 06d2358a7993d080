"""The recorded Space the Telegram scenarios buy: the pipeline's speech served as HLS."""

from tests.pipeline.conftest import hls_root, hls_url, speech  # noqa: F401
