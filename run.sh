#!/usr/bin/env bash
# Set everything up, then do one thing:
#   bash run.sh book    build the book (HTML, PDF, evaluated notebooks)
#   bash run.sh test    run the test suite
#   bash run.sh setup   only set up (Debian packages, .venv/, data)
# Setting up is idempotent and fast when nothing changed.
set -euo pipefail
cd "$(dirname "$0")"

APT_PACKAGES="dataset-fashion-mnist pandoc chromium chromium-driver \
poppler-utils"
APT_PDF_PACKAGES="texlive-xetex texlive-fonts-recommended latexmk \
texlive-latex-recommended texlive-latex-extra fonts-freefont-otf librsvg2-bin"
VENV=.venv

log() { echo "[run.sh] $*" >&2; }

install_debian_packages() {
    local wanted="$APT_PACKAGES $APT_PDF_PACKAGES" missing=""
    for p in $wanted; do
        dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
    done
    [ -z "$missing" ] && return 0
    if ! command -v apt-get >/dev/null; then
        log "no apt-get here; please install:$missing"
        return 0
    fi
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    log "installing Debian packages:$missing"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
        --no-install-recommends $missing >/dev/null
}

find_python() {
    for py in python3.11 python3; do
        if command -v "$py" >/dev/null &&
            "$py" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'
        then
            echo "$py"
            return 0
        fi
    done
    log "Python 3.11 is required (python3.11 or python3 on PATH)"
    exit 1
}

setup_venv() {
    local stamp="$VENV/.requirements.sha256" want
    want=$(sha256sum requirements.txt | cut -d' ' -f1)
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return 0
    fi
    [ -x "$VENV/bin/python" ] || "$(find_python)" -m venv "$VENV"
    log "installing Python packages into $VENV/ (a few minutes)"
    local pip="$VENV/bin/python -m pip --disable-pip-version-check -q"
    $pip install --upgrade pip
    # lines marked "no-deps" are installed without their stale pins
    $pip install -r <(grep -v 'no-deps' requirements.txt)
    $pip install --no-deps -r <(grep 'no-deps' requirements.txt |
                               sed 's/#.*//')
    echo "$want" > "$stamp"
}

install_package() {
    # every time, also when the requirements did not change: the package
    # must point at this checkout (editable, no download). setuptools warns
    # about editable installs in general: shown only if the install fails.
    local out
    out=$("$VENV/bin/python" -m pip --disable-pip-version-check -q install \
        --no-deps --no-build-isolation -e . 2>&1) || {
        echo "$out" >&2
        return 1
    }
}

setup() {
    install_debian_packages
    setup_venv
    install_package
    "$VENV/bin/python" -c 'import hpo.data; hpo.data.prepare_data()'
}

case "${1:-}" in
    setup) setup ;;
    test)
        setup
        shift
        exec "$VENV/bin/python" -m pytest tests "$@"
        ;;
    book)
        setup
        exec "$VENV/bin/python" -m tools.build_book
        ;;
    *)
        echo "usage: bash run.sh {book|test|setup}" >&2
        exit 2
        ;;
esac
