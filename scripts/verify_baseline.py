#!/usr/bin/env python3
"""What `api-recorder verify DIR...` checks, in plain Python (standard library only): the
baseline `scripts/bench-commands.sh` times it against, as a whole command.

For every `.json` file in folders named `recordings`: it parses, its name is the hash its content
implies (model lists: hash and digest), and its bytes are exactly `json.dump(obj, f, indent=2)`
plus a newline, as the reference writes them. One line per problem, then a summary; exit 1 when
anything is wrong.

usage: verify_baseline.py DIR...
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hash_baseline import canonical, model_digest, recording_files, recording_identity, sha256_hex  # noqa: E402


def main(roots):
    ok = misnamed = not_canonical = unreadable = 0
    for path in recording_files(roots or ["."]):
        try:
            with open(path, "rb") as f:
                data = f.read()
            rec = json.loads(data)
            digest = sha256_hex(canonical(recording_identity(rec)))
        except (OSError, ValueError, KeyError, TypeError) as error:
            unreadable += 1
            print(f"{path}: unreadable: {error}")
            continue
        name = os.path.basename(path)
        expected = f"models-{digest}-{model_digest(rec)}.json" if name.startswith("models-") else f"{digest}.json"
        good = True
        if name != expected:
            misnamed += 1
            good = False
            print(f"{path}: stale: its content hashes to {expected}")
        if (json.dumps(rec, indent=2) + "\n").encode() != data:
            not_canonical += 1
            good = False
            print(f"{path}: not canonical")
        ok += good
    total = ok + misnamed + not_canonical + unreadable
    print(f"{total} recordings: {ok} ok, {misnamed} misnamed, {not_canonical} not canonical, {unreadable} unreadable")
    return 0 if ok == total else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
