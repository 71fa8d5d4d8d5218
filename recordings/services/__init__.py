"""Work that crosses models or touches blob storage, as `<entity>_<verb>` functions.

One module a workflow, imported by the module that holds the function (this package
re-exports nothing, so who depends on what shows in the imports): storage (playback
reads, purge, blob rewrites, legal holds, orphans), segments (a recording's windows
as time slices a player fetches one by one), signals (what happened in a recording,
and its markers), compaction (and the recording rules applied then), purge (deleting
a set someone confirmed), curation, usage (billing caps), jobs (periodic jobs run
once at a time), the ingest ledger and transfer (imports and export audits).
"""
