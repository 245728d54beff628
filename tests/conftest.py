"""For every test process: a running `make run` started by a test (or by the developer) keeps its
state file apart (devtools/local_run.py), so `make deliveries` in another test never finds it."""

import os
import tempfile
from pathlib import Path

os.environ["LOCAL_RUN_FILE"] = str(Path(tempfile.mkdtemp(prefix="local-run-")) / "make-run.json")
