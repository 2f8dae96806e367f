"""The DynamoDB store: keys (built only in ``keys``), item mapping and the repository."""
