"""Issuer signing keys: created, rotated and retired by key id; private halves sealed at rest."""
