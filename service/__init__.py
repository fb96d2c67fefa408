"""fhir-alerts: bone-metastasis surveillance over FHIR R4."""

__version__ = "0.1.0"
