"""Pure decisions on parsed items: sanitize, canonicalize, give them an identity."""
