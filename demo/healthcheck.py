"""Smoke check for the demo: GET a URL; healthy means HTTP 200 **and** the expected release.

    python3 healthcheck.py URL [VERSION]

With VERSION (the ref being deployed, `{ref}` in the step), the JSON body's `version` must
equal it: a 200 from some other app on the port, or from the release we replaced, is a
failure, not a success. Prints what was seen either way; exit 0 healthy, 1 not.
"""

import json
import sys
import urllib.error
import urllib.request


def check(url: str, expected: str | None) -> tuple[bool, str]:
    """(healthy, what was seen) for one GET of `url`."""
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            status, body = resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return False, f"{url}: {exc.code}"
    except OSError as exc:
        return False, f"{url}: {exc}"
    seen = f"{url}: {status} {body[:200]}"
    if status != 200:
        return False, seen
    if expected is None:
        return True, seen
    try:
        version = json.loads(body).get("version")
    except (ValueError, AttributeError):
        version = None
    if version is None:
        return False, f"{seen}\nexpected version {expected!r}, but the app does not report a version"
    if str(version) != expected:
        return False, (
            f"{seen}\nexpected version {expected!r}, the app on this port serves {str(version)!r}: "
            "the new release is not what answers (another app on the port, or the old one still running?)"
        )
    return True, seen


def main(argv: list[str]) -> int:
    """Run the check; print what was seen; 0 when healthy."""
    if len(argv) not in (2, 3):
        print("usage: healthcheck.py URL [VERSION]", file=sys.stderr)
        return 2
    ok, seen = check(argv[1], argv[2] if len(argv) == 3 else None)
    print(seen)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
