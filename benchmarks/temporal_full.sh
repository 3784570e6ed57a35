#!/usr/bin/env bash
# Full `nica reproduce temporal` and `nica reproduce regimes` (issue 14) from a source tree:
# run from a folder holding src/ (the repository root, or `git archive HEAD | tar x` of it).
# Usage: bash benchmarks/temporal_full.sh OUTDIR NJOBS
# Env: PYTHON (default python3); WHEELS: folder of the safetensors / zuko wheels that nica
# imports and the machine may lack (default: wheels-temporal beside this script, else
# wheels-causal there). Sized for <= 7.5 min wall on 6 cores (~6 min measured estimate):
# temporal = 5 data seeds (3001-3005) x 4 methods on the nonstationary setting (8 latents);
# regimes = 5 data seeds x 3 models + 2 references. OUTDIR gets temporal/ and regimes/
# (CSV, PNG, log), env.txt, and the summaries are printed.
set -euo pipefail
OUTDIR=${1:?usage: temporal_full.sh OUTDIR NJOBS}
NJOBS=${2:?usage: temporal_full.sh OUTDIR NJOBS}
PYTHON=${PYTHON:-python3}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ -z "${WHEELS:-}" ]; then
  WHEELS=$HERE/wheels-temporal
  [ -d "$WHEELS" ] || WHEELS=$HERE/wheels-causal
fi
[ -d src/nica ] || { echo "run from a folder holding src/nica" >&2; exit 2; }
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
DEPS="$OUTDIR/.deps"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
# safetensors / zuko: unpacked from the wheels when this Python lacks them
for mod in safetensors zuko; do
  if ! "$PYTHON" -c "import $mod" 2>/dev/null; then
    whl=$(ls "$WHEELS"/$mod-*.whl 2>/dev/null | head -1 || true)
    [ -n "$whl" ] || { echo "$mod missing and no wheel in $WHEELS" >&2; exit 2; }
    "$PYTHON" -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" "$whl" "$DEPS"
    echo "using $mod from $(basename "$whl")"
  fi
done
[ -d "$DEPS" ] && export PYTHONPATH="$PYTHONPATH:$DEPS"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
{ date -u; echo "nproc $(nproc)"; "$PYTHON" -c "import sys, torch, numpy; print(sys.version); print('torch', torch.__version__, 'numpy', numpy.__version__)"; } > "$OUTDIR/env.txt" 2>&1
cat "$OUTDIR/env.txt"
"$PYTHON" -c "import nica.temporal, nica.experiments" || { echo "nica does not import" >&2; exit 2; }
start=$(date +%s)
for name in temporal regimes; do
  t0=$(date +%s)
  "$PYTHON" -m nica --threads 1 reproduce "$name" --jobs "$NJOBS" --out "$OUTDIR/$name" --overwrite \
      ${REPRODUCE_ARGS:-} 2>&1 | tee "$OUTDIR/$name.log"
  echo "$name wall seconds: $(( $(date +%s) - t0 ))" | tee -a "$OUTDIR/$name.log"
done
echo "total wall seconds: $(( $(date +%s) - start ))" | tee "$OUTDIR/wall.txt"
