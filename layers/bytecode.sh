#!/bin/sh
# Compile an artifact directory's Python modules to bytecode for the Lambda runtime's Python:
#   PY_VERSION=3.13 sh layers/bytecode.sh <artifact dir>
# Lambda's /opt and /var/task are read-only: without shipped bytecode every cold start compiles every
# module it imports again. The .pyc files must come from the runtime's minor version (3.13: magic
# number and code objects differ between minors); they are "unchecked-hash" pycs (PEP 552), used
# without looking at the source's mtime, which the zip and the extraction do not keep exactly.
#
# The interpreter: python<X.Y> on PATH, else (Debian or Ubuntu machines, e.g. CI) Debian's own
# python<X.Y>-minimal package with the C library it was built against, extracted (not installed)
# into .local/python<X.Y>-<arch>/ once and run through its own dynamic loader: this machine's
# system is not changed. docs/adr/0011-bytecode-and-snapstart.md.
set -eu
dir=$1
version=${PY_VERSION:-3.13}
root=$(cd "$(dirname "$0")/.." && pwd)

# Debian release that ships each CPython minor as python<X.Y>-minimal.
debian_suite() {
  case $1 in
    3.11) echo bookworm ;;
    3.13) echo trixie ;;
    *) echo "bytecode.sh: no Debian release known for Python $1: put python$1 on PATH" >&2; exit 1 ;;
  esac
}

fetch_python() {  # extract Debian's python<version>-minimal into $1
  dest=$1
  command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || {
    echo "bytecode.sh: python$version is not on PATH and this is not a Debian-like machine: install python$version" >&2
    exit 1
  }
  suite=$(debian_suite "$version")
  apt=$dest.apt
  rm -rf "$apt" "$dest"
  mkdir -p "$apt/lists/partial" "$apt/archives/partial" "$dest"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $suite main" \
    > "$apt/sources.list"
  set -- -q -o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/nonexistent \
    -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache::Archives=$apt/archives" \
    -o "Dir::Cache::pkgcache=$apt/pkgcache.bin" -o "Dir::Cache::srcpkgcache=$apt/srcpkgcache.bin" \
    -o APT::Sandbox::User=root
  apt-get "$@" update >&2
  (cd "$apt" && apt-get "$@" download "python$version-minimal" "libpython$version-minimal" libc6 zlib1g libexpat1 >&2)
  for deb in "$apt"/*.deb; do dpkg-deb -x "$deb" "$dest"; done
  rm -rf "$apt"
  loader=$(ls "$dest"/usr/lib/*/ld-linux*.so.* | head -n 1)
  libs=$(dirname "$loader")
  printf '#!/bin/sh\nexec "%s" --library-path "%s" "%s" "$@"\n' "$loader" "$libs" "$dest/usr/bin/python$version" \
    > "$dest/python"
  chmod +x "$dest/python"
}

python_for() {  # a command that runs CPython <version>
  for candidate in "python$version" python3; do
    if command -v "$candidate" >/dev/null \
      && [ "$("$candidate" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "$version" ]; then
      command -v "$candidate"
      return
    fi
  done
  dest=$root/.local/python$version-$(uname -m)
  if [ ! -x "$dest/python" ]; then
    mkdir -p "$root/.local"
    # sam build runs the Makefiles in parallel: one download
    exec 9>"$root/.local/python$version.lock"
    command -v flock >/dev/null && flock 9
    [ -x "$dest/python" ] || fetch_python "$dest"
  fi
  echo "$dest/python"
}

python=$(python_for)
"$python" -I -m compileall -q --invalidation-mode unchecked-hash "$dir" >/dev/null
