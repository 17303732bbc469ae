"""The Asterisk stand-in the telephony tests run against (ARI REST + event WebSocket),
and Asterisk's ARI data model as checks."""
