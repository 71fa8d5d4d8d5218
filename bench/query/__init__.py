"""The filter language at a million recordings, against hand-written SQL."""
