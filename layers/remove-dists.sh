#!/bin/sh
# Remove installed distributions from a layer directory by what pip recorded for them:
#   sh layers/remove-dists.sh <site dir> <distribution> ...
# Each distribution's files are the ones its <name>-<version>.dist-info/RECORD lists (modules,
# packages, compiled extensions whatever their platform tag, data files), then the dist-info
# itself; directories left empty go too. Names as pip normalises them in dist-info directories
# (python_dateutil, typing_extensions, charset_normalizer). A name that is not installed is skipped.
# Used by the layer Makefiles (docs/adr/0008-layer-package-owners.md); platform-independent.
set -eu
site=$1
shift
cd "$site"
for dist in "$@"; do
  for info in "$dist"-*.dist-info; do
    [ -d "$info" ] || continue
    if [ -f "$info/RECORD" ]; then
      # first CSV field of each line; paths outside the site dir (../../bin/...) are not ours
      cut -d, -f1 "$info/RECORD" | grep -v '^\.\./' | grep -v '^/' | tr '\n' '\0' | xargs -0 rm -f
    fi
    rm -rf "$info"
  done
done
find . -depth -type d -empty -delete
