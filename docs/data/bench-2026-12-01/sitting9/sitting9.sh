#!/bin/bash
# Session 9 sitting: integ build vs jax-js on lavapipe, CPU Node/Deno/PyTorch, 634bd8d before.
export XDG_RUNTIME_DIR=/tmp
O=/work/notes/bench/s9
cd /work/wt/integ
gpu() { node_modules/.bin/deno run -A bench/main.ts --backend webgpu --vs-jaxjs --models resnet20 --batch 64 --sizes 512 --repeats 2 --threads 1 > $O/gpu-r$1.json 2> $O/gpu-r$1.err; echo "gpu round $1 done $(date +%T)"; }
gpu 1
node build/bench.mjs --vs-torch --models resnet20 --threads 1,2 --sizes "" > $O/node.json 2> $O/node.err; echo "node done $(date +%T)"
node_modules/.bin/deno run -A --v8-flags=--wasm-tiering-budget=1800000 bench/main.ts --models resnet20 --threads 1,2 --sizes "" > $O/deno.json 2> $O/deno.err; echo "deno done $(date +%T)"
(cd /work/main && node build/bench.mjs --models resnet20 --threads 1,2 --sizes "" > $O/before-node.json 2> $O/before-node.err); echo "before done $(date +%T)"
gpu 2
node build/bench.mjs --models resnet20 --threads 1,2 --sizes "" > $O/node2.json 2> $O/node2.err; echo "node2 done $(date +%T)"
gpu 3
