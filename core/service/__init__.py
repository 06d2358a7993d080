"""Use cases the adapters call. Each returns plain values from ``core.results``."""
