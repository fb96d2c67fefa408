"""FHIR ValueSet resources of the rule set, a package only so that they ship with it."""
