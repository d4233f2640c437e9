"""`python -m api_recorder ARGS...`: the `api-recorder` command, where the scripts folder is not on PATH."""
from __future__ import annotations

import os
import sys

from ._proxy import ProxyError, find_binary


def main() -> None:
    try:
        binary = find_binary()
    except ProxyError as error:
        sys.exit(f"api-recorder: {error}")
    os.execv(binary, [binary, *sys.argv[1:]])


if __name__ == "__main__":
    main()
