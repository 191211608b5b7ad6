#!/bin/sh
# Installs the system packages lstmkit's tests need that pip cannot: Debian's `chromium`, the headless browser that
# tests/test_report.py opens the HTML run report in, and `sword-text-sparv` with its reader `diatheke`, the Spanish
# side of the verse pairs (lstmkit.tasks.text.verses), and `espeak-ng` and `sox`, which speak and degrade the synthetic
# speech-recognition data (lstmkit.tasks.recognition.speech.recognizer), and `redis-server`, the shared stream store that the serve tests start
# on a loopback port (tests/serve/test_redis.py; only the binary is needed, its system service is not used). Idempotent: installs only what is missing, exits 0 at once when
# everything is there (so `make test` can run it every time). Runs apt-get as root, or through sudo otherwise.
#
#   scripts/install-system-deps.sh          # what `make test` runs first (via `make system-deps`)
set -eu

PACKAGES="chromium diatheke sword-text-sparv espeak-ng sox redis-server"  # Debian package names

# a package counts as there when a command of its name is on PATH (chromium may come from elsewhere) or dpkg has it
installed() {
    command -v "$1" >/dev/null 2>&1 && return 0
    command -v dpkg-query >/dev/null 2>&1 && dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"
}

missing=""
for package in $PACKAGES; do
    if installed "$package"; then
        echo "install-system-deps: $package is installed."
    else
        missing="$missing $package"
    fi
done
if [ -z "$missing" ]; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-system-deps: missing:$missing, and there is no apt-get (this script knows Debian and its" \
        "derivatives). Install them with your package manager (for Chromium you may instead point" \
        "LSTMKIT_CHROMIUM at a Chromium or Chrome binary)." >&2
    exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
    as_root=""
elif command -v sudo >/dev/null 2>&1; then
    as_root="sudo"
else
    echo "install-system-deps: missing:$missing; installing needs root, and sudo is not installed. Run this" \
        "script as root, or: apt-get install -y$missing" >&2
    exit 1
fi

echo "install-system-deps: installing$missing with apt-get${as_root:+ (through sudo)}..."
# update first: a fresh machine or container often has no package lists at all
$as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
# shellcheck disable=SC2086  # $missing is a list of package names, split on purpose
$as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing
for package in $missing; do
    if ! installed "$package"; then
        echo "install-system-deps: apt-get finished but $package is still not installed. On Ubuntu, chromium is a" \
            "snap: install it with snap, or set LSTMKIT_CHROMIUM to a Chromium or Chrome binary." >&2
        exit 1
    fi
done
echo "install-system-deps: done."
