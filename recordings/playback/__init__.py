"""The playback wing: reading recordings back, and taking them out and in again.

`responses` (the events, segments and export answers the player and the API
send), `timeline` (the player's timeline document), `offline` (the self-contained
HTML file), `archives` (export folders and archives, and reading them back) and
`transfer` (importing an export, and auditing exports).
"""
