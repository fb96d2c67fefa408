"""The oncology nurse worklist: server-rendered HTML over the same store and FHIR write path as
the API.

`routes` is the only module the app imports; `sessions` signs nurses in, `csrf` guards every
state change, `worklist` and `trend` read what a page shows, `actions` acknowledges and closes.
The alert strings it reads are `contract`'s; the trends' codes, units and limits the rule set's.
"""
