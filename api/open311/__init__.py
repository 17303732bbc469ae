"""Open311 GeoReport v2: the catalogue and requests in the spec's JSON and XML (api/routers/open311.py serves them)."""
