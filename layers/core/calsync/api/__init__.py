"""The HTTP API's own layer code: claims -> principal, RFC 9457 problems, request/response schemas
and the use-cases (service). The Lambda handler in ``functions/api/app.py`` only wires them to
Powertools' event handler."""
