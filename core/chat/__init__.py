"""Chat over Spaces: passage index, retrieval, token-bounded prompts, answer backends."""
