#!/bin/bash
# Interleaved Node/Deno bench A/B: ROUNDS rounds, order alternating.  Args go to the bench.
cd /work/wt/denojob
OUT=${OUT:-runs/denojob/ab_bench.jsonl}
ROUNDS=${ROUNDS:-3}
DENO_FLAGS=${DENO_FLAGS:---v8-flags=--wasm-tiering-budget=1800000}
for r in $(seq 1 $ROUNDS); do
  if [ $((r % 2)) = 1 ]; then order="node deno"; else order="deno node"; fi
  for v in $order; do
    t0=$(date +%s.%N)
    if [ $v = node ]; then node build/bench.mjs "$@" 2>/tmp/denojob_err >/tmp/denojob_out
    else node_modules/.bin/deno run -A $DENO_FLAGS bench/main.ts "$@" 2>/tmp/denojob_err >/tmp/denojob_out; fi
    echo "round $r $v $(echo "$(date +%s.%N) - $t0" | bc)s: $(python3 -c "import json,sys;d=json.load(open('/tmp/denojob_out'));print(' '.join(f\"{m['model']}/{m['threads']}/{m['kernels']}={m['trainImagesPerSec']:.1f}\" for m in d['models']))")"
    python3 -c "import json;d=json.load(open('/tmp/denojob_out'));d['variant']='$v';d['round']=$r;print(json.dumps(d))" >> $OUT
  done
done
