"""The clinical scenario fixtures: FHIR transaction Bundles with their expected alerts.

The JSON files beside this module are the contract tests and replay read; the Python code only
writes them (``python -m fhir_fixtures.build``). See README.md.
"""
