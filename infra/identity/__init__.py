"""Sign-in: signing keys, bearer tokens, API keys and secret hashing (see api/auth.py)."""
