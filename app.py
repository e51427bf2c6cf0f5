"""Start the mock interviewer in the browser: settings → services → UI → launch (127.0.0.1:7860)."""

import sys

from interviewer.launcher import main

if __name__ == "__main__":
    sys.exit(main())
