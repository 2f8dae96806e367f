"""calsync's Google Calendar adapter (the GoogleLayer): OAuth connect with PKCE, the events source
(sync tokens, 410 resync), the writer (insert, patch with If-Match), push channels."""
