"""calsync: the shared layer (domain, rules, store) of the calsync serverless stack."""
