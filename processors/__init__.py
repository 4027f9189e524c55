"""costspan.processors: the collector's processor chain, one module per processor."""
