#!/usr/bin/env bash
# Installs the Debian packages Ponder needs to build and test. Idempotent: packages that
# are already installed are skipped, so a second run does nothing.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config
  libpcre2-dev      # Unicode-property regexes for BPE pre-tokenizers
  libjansson-dev    # JSON (CLI --json output, reference data in tests)
  libcmocka-dev     # unit tests under CTest
  python3-numpy     # shared/tools/synth_gguf.py makes the on-demand test models
  clang libclang-rt-14-dev  # libFuzzer harnesses and sanitizer runtimes
  libmicrohttpd-dev # HTTP for ponder serve
  nodejs            # the server's integration tests (Debian's npm package too, if npm is absent)
  chromium          # headless browser test of the chat page
  gnuplot-nox       # ponder eval --plot FILE.png (SVG plots need nothing)
  libedit-dev       # ponder chat: line editing and history (linked by the CLI only)
  libyaml-dev       # ponder serve --config FILE (the router's model list)
  libcurl4-openssl-dev  # remote backends of the router (OpenAI-compatible HTTP, SSE); ponder pull
  libssl-dev        # sha256 of ponder pull's downloads (libcrypto)
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=sudo
  else
    echo "install-deps: missing packages: ${missing[*]}" >&2
    echo "install-deps: run as root (or install them with apt-get) and try again" >&2
    exit 1
  fi
else
  SUDO=
fi

echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
