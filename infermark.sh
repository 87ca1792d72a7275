#!/usr/bin/env bash
# infermark's two entry points on a Debian bookworm machine (see README.md):
#   ./infermark.sh [run options]   the main job: set-up, build, default suite, estimate tables
#   ./infermark.sh test            the tests: set-up, release build + all tests, ASan+UBSan build + all tests,
#                                  clang 14 build of the program
# Both install missing Debian packages (as root; otherwise they print the apt-get line and stop).
set -euo pipefail
cd "$(dirname "$0")"

PACKAGES=(g++ clang-14 cmake ninja-build pkg-config git
          libbenchmark-dev libgtest-dev libgmock-dev libhwloc-dev libtbb-dev nlohmann-json3-dev
          libtomlplusplus-dev libcli11-dev libfmt-dev libboost-dev libdnnl-dev ocl-icd-opencl-dev libopenblas-dev
          libbenchmark-tools python3-scipy)
# Only the tests need these: headless rendering of the HTML report, and the callgrind tier.
TEST_PACKAGES=(chromium valgrind)

install_missing() {  # install_missing <package>...
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local line="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "infermark: missing Debian packages: ${missing[*]}" >&2
    echo "Install them as root, then run this again:" >&2
    echo "  sudo sh -c '$line'" >&2
    exit 1
  fi
  echo "infermark: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
}

build() {  # build <preset>: configure once, then incremental builds
  local preset=$1
  if [ ! -f "build/$preset/CMakeCache.txt" ]; then
    cmake --preset "$preset" >&2
  fi
  cmake --build --preset "$preset" -j "$(nproc)" >&2
}

if [ "${1:-}" = "test" ]; then
  shift
  install_missing "${PACKAGES[@]}" "${TEST_PACKAGES[@]}"
  build release
  ctest --preset release -j 2 --timeout 600 "$@"
  build asan
  ctest --preset asan -j 2 --timeout 900 "$@"
  # clang 14 must build the program too (the tests ran above, twice).
  [ -f build/clang/CMakeCache.txt ] || cmake --preset clang >&2
  cmake --build --preset clang -j "$(nproc)" --target infermark >&2
  echo "clang 14 build: ok"
  exit 0
fi
install_missing "${PACKAGES[@]}"
build release
exec build/release/infermark run "$@"
