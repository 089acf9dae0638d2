#!/bin/bash
# Interleaved step series: variants rotate each round.  Args go to step_series.
cd /work/wt/denojob
OUT=${OUT:-runs/denojob/ab_series.jsonl}
ROUNDS=${ROUNDS:-3}
D=node_modules/.bin/deno
run() {
  case $1 in
    node) node build/step_series.mjs "${@:2}" ;;
    deno) $D run -A bench/step_series.ts "${@:2}" ;;
    denoflag) $D run -A --v8-flags=--wasm-tiering-budget=1800000 bench/step_series.ts "${@:2}" ;;
    denonoliftoff) $D run -A --v8-flags=--no-liftoff bench/step_series.ts "${@:2}" ;;
    nodenoliftoff) node --no-liftoff build/step_series.mjs "${@:2}" ;;
  esac
}
VARIANTS=${VARIANTS:-node deno denoflag denonoliftoff}
set -- "$@"
for r in $(seq 1 $ROUNDS); do
  vs=($VARIANTS); n=${#vs[@]}
  for i in $(seq 0 $((n-1))); do
    v=${vs[$(( (i + r) % n ))]}
    line=$(run $v "$@")
    echo "{\"variant\":\"$v\",\"round\":$r,${line:1}}" >> $OUT
    python3 -c "import json,sys;d=json.loads(sys.argv[1]);print('$r','$v'.ljust(14),' | '.join(f\"{s['threads']}T {s['wall']} med {s['medianLast']}\" for s in d['series']))" "$line"
  done
done
