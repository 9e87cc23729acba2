#!/usr/bin/env bash
# Make sure this machine can run the browser tests of the web view: Debian's Chromium and its
# WebDriver (chromedriver). Idempotent and quiet; installs only what is missing (apt-get, as
# root, non-interactively). selenium itself comes from PyPI with the test extras (pyproject.toml).
set -euo pipefail

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
fc-list >/dev/null 2>&1 || missing+=(fontconfig)
[ -d /usr/share/fonts/truetype/dejavu ] || missing+=(fonts-dejavu-core)

if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "ensure-chromium: missing ${missing[*]}; install them (apt-get install ${missing[*]})" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
