"""Consent: the hash-chained consent ledger and its derived state, and the
keyed hashes of the suppression (STOP) list."""
