#!/bin/bash
cd /work/wt/denojob
OUTDIR=${OUTDIR:-runs/denojob/profile}; mkdir -p $OUTDIR
ROUNDS=${ROUNDS:-3}
DFLAGS=${DFLAGS:---v8-flags=--wasm-tiering-budget=1800000}
for r in $(seq 1 $ROUNDS); do
  if [ $((r % 2)) = 1 ]; then order="node deno"; else order="deno node"; fi
  for v in $order; do
    if [ $v = node ]; then node build/step_profile.mjs "$@" > $OUTDIR/$v-$r.json 2>$OUTDIR/$v-$r.txt
    else node_modules/.bin/deno run -A $DFLAGS bench/step_profile.ts "$@" > $OUTDIR/$v-$r.json 2>$OUTDIR/$v-$r.txt; fi
    head -1 $OUTDIR/$v-$r.txt
  done
done
