"""calsync: the shared layer (domain, rules, store) of the calsync serverless stack."""

from calsync import lean_imports, snapstart

lean_imports.install()  # before anything imports Powertools' event handler or data classes (docs/adr/0022)
__all__ = ["snapstart"]  # its runtime hooks are registered by this import (docs/adr/0025)
