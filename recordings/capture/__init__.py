"""The capture wing: what browsers post, and how it is admitted and stored.

`endpoints` (the capture API posthog-js and rrweb clients post to), `sdk_views` and
`sdk_config` (what posthog-js loads at start-up, the demo page), `throttles` (the
per-project rate limit), `geo` (country from an offline IP database), `admission`
(whether capture takes a request, and the refusal), `people` (analytics events and
the persons they identify), `store` and `store_sql` (a batch written to the
database and blob storage). Parsing is the pure core's (recordings.ingest).
"""
