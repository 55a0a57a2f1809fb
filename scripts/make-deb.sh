#!/usr/bin/env bash
# make deb: builds the Debian package with dpkg-buildpackage in a copy of
# the tree (build-deb/kingcobra-<version>/: dpkg-buildpackage writes the
# .deb beside the tree it builds, and leaves its work in it), so the
# checkout stays clean. The package lands in build-deb/; then
# tests/install/deb_test.sh installs it into a fresh tree and runs it.
#   scripts/make-deb.sh [OUTPUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-build-deb}
version=$(dpkg-parsechangelog -S Version)
tree=$out/kingcobra-$version
rm -rf "$tree"
mkdir -p "$tree"
# What git knows of (committed or not, but not ignored): no build directories.
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$tree"
(cd "$tree" && dpkg-buildpackage -us -uc -b -j2 >../dpkg-buildpackage.log 2>&1) || {
  tail -40 "$out/dpkg-buildpackage.log"; exit 1; }
deb=$(ls "$out"/kingcobra_"$version"_*.deb)
echo "make deb: $deb"
tests/install/deb_test.sh "$deb"
