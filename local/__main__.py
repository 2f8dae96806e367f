"""``python -m local``: start the whole local stack in the foreground (``make run``)."""

from __future__ import annotations

import time

_STARTED = time.monotonic()  # before the heavy imports: the banner reports the time until the API answers

import sys  # noqa: E402

from local.stack import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(_STARTED))
