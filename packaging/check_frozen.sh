#!/usr/bin/env bash
# The frozen self-test as a user without Hearth's environment would run it: the archive unpacked into a
# folder whose path has spaces, `env -i` with a temporary HOME and PATH=/usr/bin:/bin (no virtualenv, no
# project folder on sys.path), offscreen, and with no network at all where `unshare -n` works.
#
#     bash packaging/check_frozen.sh dist/Hearth-<version>-linux-x86_64.tar.gz
set -euo pipefail
archive=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
[ -f "$archive" ] || { echo "error: no archive at $1: run make installer first" >&2; exit 2; }
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
dest="$scratch/unpacked by a user"
mkdir -p "$dest" "$scratch/home"
started=$(date +%s)
tar -xzf "$archive" -C "$dest"
echo "unpacked into '$dest' in $(( $(date +%s) - started )) s"
cd "$scratch"  # not the project folder
clean=(env -i "HOME=$scratch/home" PATH=/usr/bin:/bin LANG=C.UTF-8 QT_QPA_PLATFORM=offscreen
       "$dest/Hearth/hearth" selftest --full --json)
# A new network namespace has only a loopback interface, and it starts down: bring it up for the engine host.
if unshare -n sh -c 'ip link set lo up' 2>/dev/null; then
    echo "running offline (unshare -n: no network interface but loopback)"
    exec unshare -n sh -c 'ip link set lo up && exec "$@"' sh "${clean[@]}"
fi
echo "unshare -n is not available here: running with the machine's network (the self-test itself reaches none)"
exec "${clean[@]}"
