"""Entry point of a worker process: ``python -m bayes_unsl._worker FOLDER INDEX``."""

import sys
import traceback
from pathlib import Path

from bayes_unsl.workers import serve

if __name__ == "__main__":
    try:
        serve(Path(sys.argv[1]), int(sys.argv[2]))
    except BaseException:
        traceback.print_exc()
        sys.exit(1)
