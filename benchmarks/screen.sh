#!/bin/bash
# Screens training variants in parallel on a GPU: each line of JOBS is "NAME quality.py-arguments"
# (use --epochs, not --budget: a wall-clock budget means nothing with runs side by side). Each
# variant is one `benchmarks/quality.py --device DEVICE` run, PARALLEL at a time; a summary of
# every row and bar goes to stdout (and to SUMMARY when given). Screening ranks variants for
# the same number of epochs as a CPU budget gives; the README's bars are CPU quality.py runs.
#
#     benchmarks/screen.sh benchmarks/screens/class-share.txt [DEVICE=cuda] [PARALLEL=6] [SUMMARY=file]
#
# Environment: MNISTGAN_DATA_DIR (the MNIST folder), SCREEN_S (stop after this many seconds).
set -u
JOBS=${1:?usage: benchmarks/screen.sh JOBS-FILE [DEVICE] [PARALLEL] [SUMMARY]}
DEVICE=${2:-cuda}; PARALLEL=${3:-6}; SUMMARY=${4:-/dev/null}
ROOT=$(mktemp -d /tmp/mnistgan-screen-XXXX)
cd "$(dirname "$0")/.." || exit 1
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2 ROOT DEVICE
one() {
    name=$1; shift
    python benchmarks/quality.py --budget "" --device "$DEVICE" --out "$ROOT/$name" "$@" > "$ROOT/$name.log" 2>&1
    echo "done $name rc=$? $(date +%T)"
}
export -f one
grep -v '^\s*\(#\|$\)' "$JOBS" | timeout "${SCREEN_S:-3600}" xargs -P "$PARALLEL" -L 1 bash -c 'one "$@"' _
for f in "$ROOT"/*.log; do
    echo "== $(basename "$f" .log)"
    grep -E " epochs .* FID |^(PASS|FAIL)|Error" "$f" | tail -4
done | tee "$SUMMARY"
echo "runs kept in $ROOT"
