"""The local stack of calsync: ``python -m local`` (``make run``) and the ``calsync-local`` CLI.

See ../../shared/spec/LOCAL.md and the README. Nothing here is deployed to AWS.
"""
