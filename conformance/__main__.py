import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "harness"))

from conformance.run import main  # noqa: E402

sys.exit(main(sys.argv[1:]))
