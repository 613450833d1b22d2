"""Exchange formats: calendar files for course plans (and, later, FHIR bundles)."""
