#!/bin/bash
# A/B of kernel builds: variants "runtime:dir", rotating order per round. Args go to step_series.
OUT=${OUT:-/work/wt/denojob/runs/denojob/ab_var.jsonl}
ROUNDS=${ROUNDS:-3}
VARIANTS=${VARIANTS:-node:/work/wt/denojob node:/tmp/djvar deno:/work/wt/denojob deno:/tmp/djvar}
KERNELS=${KERNELS:-plain}
DFLAGS=${DFLAGS:---v8-flags=--wasm-tiering-budget=1800000}
vs=($VARIANTS); n=${#vs[@]}
for r in $(seq 1 $ROUNDS); do
  for i in $(seq 0 $((n-1))); do
    v=${vs[$(( (i + r) % n ))]}; rt=${v%%:*}; dir=${v#*:}
    for k in $KERNELS; do
      if [ $rt = node ]; then line=$(cd $dir && node build/step_series.mjs --kernels $k "$@")
      else line=$(cd $dir && /work/wt/denojob/node_modules/.bin/deno run -A $DFLAGS bench/step_series.ts --kernels $k "$@"); fi
      echo "{\"variant\":\"$v\",\"round\":$r,${line:1}}" >> $OUT
      python3 -c "import json,sys;d=json.loads(sys.argv[1]);print('$r','$v'.ljust(26),'$k'.ljust(8),' | '.join(f\"{s['threads']}T med {s['medianLast']} {s['wall']}\" for s in d['series']))" "$line"
    done
  done
done
