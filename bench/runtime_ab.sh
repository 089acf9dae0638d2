#!/bin/sh
# Node against Deno (default V8 flags and the flags deno.json's tasks pass) on the same CPU
# kernels, interleaved: ROUNDS rounds of one bench/runtime_kernels.ts process per variant, the
# order turning each round, so every variant sees the same minutes of a shared machine. Each
# process prints its JSON line into $OUT (default runs/runtime-ab.jsonl); compare medians per
# kernel across rounds. Arguments go to every process (e.g. --only step --threads 2).
#
#   node esbuild.config.mjs && sh bench/runtime_ab.sh --only sgemm,conv,step --threads 1
#   ROUNDS=5 sh bench/runtime_ab.sh --only step --threads 2
set -eu
ROUNDS=${ROUNDS:-3}
OUT=${OUT:-runs/runtime-ab.jsonl}
DENO=${DENO:-node_modules/.bin/deno}
# The V8 flags of deno.json's train and bench tasks.
TASK_FLAGS=$(sed -n 's/.*"train": "deno run -A \(--v8-flags=[^ ]*\) .*/\1/p' deno.json)
mkdir -p "$(dirname "$OUT")"
node() { command node build/runtime_kernels.mjs "$@"; }
deno_default() { "$DENO" run -A bench/runtime_kernels.ts "$@"; }
deno_tasks() { "$DENO" run -A $TASK_FLAGS bench/runtime_kernels.ts "$@"; }
r=0
while [ "$r" -lt "$ROUNDS" ]; do
  case $((r % 3)) in
    0) order="node deno_default deno_tasks" ;;
    1) order="deno_default deno_tasks node" ;;
    *) order="deno_tasks node deno_default" ;;
  esac
  for v in $order; do
    echo "round $r: $v" >&2
    "$v" "$@" | sed "s/^{/{\"variant\":\"$v\",\"round\":$r,/" >> "$OUT"
  done
  r=$((r + 1))
done
echo "wrote $OUT" >&2
