"""Enrichment of a completed Space: takeaways, chapters and verified quotes."""
