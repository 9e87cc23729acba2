"""Smoke check for the demo: GET a URL, exit 0 on HTTP 200, print what was seen."""

import sys
import urllib.error
import urllib.request

url = sys.argv[1]
try:
    with urllib.request.urlopen(url, timeout=5) as resp:
        print(f"{url}: {resp.status} {resp.read().decode()[:200]}")
        sys.exit(0)
except urllib.error.HTTPError as exc:
    print(f"{url}: {exc.code}")
except OSError as exc:
    print(f"{url}: {exc}")
sys.exit(1)
