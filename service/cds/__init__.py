"""CDS Hooks 2.0 (`patient-view`): open alerts as cards inside the EHR's chart (issue 14).

`cards` builds cards (pure), `reads` gathers what they show, `auth` checks the EHR's JWT,
`feedback` records outcomes and applies overrides as dismissals, `routes` serves them.
"""
