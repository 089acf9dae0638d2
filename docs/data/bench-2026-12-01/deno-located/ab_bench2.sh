#!/bin/bash
# Interleaved bench A/B over "runtime:dir" variants, order rotating per round. Args go to the bench.
OUT=${OUT:-/work/wt/denojob/runs/denojob/ab_bench2.jsonl}
ROUNDS=${ROUNDS:-3}
VARIANTS=${VARIANTS:-node:/work/wt/denojob deno:/work/wt/denojob node:/tmp/djbefore deno:/tmp/djbefore}
DFLAGS=${DFLAGS:---v8-flags=--wasm-tiering-budget=1800000}
vs=($VARIANTS); n=${#vs[@]}
for r in $(seq 1 $ROUNDS); do
  for i in $(seq 0 $((n-1))); do
    v=${vs[$(( (i + r) % n ))]}; rt=${v%%:*}; dir=${v#*:}
    if [ $rt = node ]; then (cd $dir && node build/bench.mjs "$@" 2>/dev/null >/tmp/denojob_out)
    else (cd $dir && /work/wt/denojob/node_modules/.bin/deno run -A $DFLAGS bench/main.ts "$@" 2>/dev/null >/tmp/denojob_out); fi
    python3 -c "import json;d=json.load(open('/tmp/denojob_out'));d['variant']='$v';d['round']=$r;print(json.dumps(d))" >> $OUT
    python3 -c "import json;d=json.load(open('/tmp/denojob_out'));print('$r','$v'.ljust(24),' '.join(f\"{m['model']}/{m['threads']}/{m['kernels']}={m['trainImagesPerSec']:.1f}\" for m in d['models']))"
  done
done
