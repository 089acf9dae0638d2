#!/bin/sh
# Node and Deno × base ($BASE, a built worktree of the earlier commit) / new (this checkout):
# bench/step_series.ts, K kernels (default plain), T threads (default 1), R rounds, S steps,
# CPUS for taskset (default 0,1), one JSON line per run to $OUT.
for r in $(seq 1 ${R:-4}); do
  for v in base new; do
    d=.; [ $v = base ] && d=${BASE:?a worktree of the base commit, built}
    (cd $d && taskset -c ${CPUS:-0,1} node build/step_series.mjs --threads ${T:-1} --steps ${S:-10} --kernels ${K:-plain}) | sed "s/^/{\"v\":\"node-$v\",\"r\":$r,\"x\":/;s/$/}/" >> ${OUT:-series2.jsonl}
    (cd $d && taskset -c ${CPUS:-0,1} node_modules/.bin/deno run -A --v8-flags=--wasm-tiering-budget=1800000 bench/step_series.ts --threads ${T:-1} --steps ${S:-10} --kernels ${K:-plain}) | sed "s/^/{\"v\":\"deno-$v\",\"r\":$r,\"x\":/;s/$/}/" >> ${OUT:-series2.jsonl}
  done
done
