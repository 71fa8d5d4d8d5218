"""Playback benchmarks: the admin player's first frame, the export's memory."""
