"""The search wing: the filter language and what runs it.

`language/` is the pure document (model, validation, JSON Schema, outline; no
Django); `compiler.py` turns a document into one ORM query; `moments.py` finds,
per recording, the first moment a filter matched (where the player starts).
"""
