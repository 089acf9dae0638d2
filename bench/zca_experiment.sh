#!/bin/sh
# The ZCA experiment of docs/variants.md §5: ResNet-20 at width 0.25 on Fashion-MNIST, 60 steps,
# BatchNorm vs ZCA whitening with the power-iteration backward vs the analytic backward, seed by
# seed (SEEDS, default "0 1 2"); one thread. A run whose model.safetensors exists is skipped; a run
# stopped by a signal (SIGINT/SIGTERM write its checkpoint) is resumed from its checkpoint, which
# ends bit-identical to an uninterrupted run; any other unfinished run starts again. SAVE_EVERY
# (default 50, as seeds 0-1 ran) is the step-record interval of metrics.jsonl: each step record
# carries the step's gradient norm, and the interval changes nothing else in the run. DIR (default
# runs/variants/zca) is where the runs go: another DIR reruns finished seeds, e.g. to check that the
# code still gives their numbers.
# Run from anywhere, after `npm run build`.
cd "$(dirname "$0")/.." || exit 1
for seed in ${SEEDS:-0 1 2}; do
  for cond in ${CONDITIONS:-bn zca-pi zca-analytic}; do
    out=${DIR:-runs/variants/zca}/$cond-s$seed
    [ -f "$out/model.safetensors" ] && continue
    mkdir -p "${DIR:-runs/variants/zca}"
    if [ -f "$out/checkpoint.safetensors" ]; then
      node dist/cli.mjs train --resume "$out" --threads 1 --json > "$out.json" 2>> "$out.log"
    else
      rm -rf "$out"
      case $cond in
        bn) extra="" ;;
        zca-pi) extra="--norm zca --zca-backward power-iteration" ;;
        zca-analytic) extra="--norm zca --zca-backward analytic" ;;
      esac
      node dist/cli.mjs train --model resnet20 --width 0.25 --steps 60 --threads 1 --seed $seed $extra \
        --save-every "${SAVE_EVERY:-50}" --out "$out" --json > "$out.json" 2> "$out.log"
    fi
    echo "$cond s$seed exit $?" >> "${DIR:-runs/variants/zca}/status"
  done
done
