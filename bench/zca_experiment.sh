#!/bin/sh
# The ZCA experiment of docs/variants.md §5: ResNet-20 at width 0.25 on Fashion-MNIST, 60 steps,
# BatchNorm vs ZCA whitening with the power-iteration backward vs the analytic backward, seeds
# 0-2, seed by seed; one thread. A run whose model.safetensors exists is skipped, so the script
# can be started again after an interruption. Run from anywhere, after `npm run build`.
cd "$(dirname "$0")/.." || exit 1
for seed in 0 1 2; do
  for cond in bn zca-pi zca-analytic; do
    out=runs/variants/zca/$cond-s$seed
    [ -f "$out/model.safetensors" ] && continue
    rm -rf "$out"
    case $cond in
      bn) extra="" ;;
      zca-pi) extra="--norm zca --zca-backward power-iteration" ;;
      zca-analytic) extra="--norm zca --zca-backward analytic" ;;
    esac
    mkdir -p runs/variants/zca
    node dist/cli.mjs train --model resnet20 --width 0.25 --steps 60 --threads 1 --seed $seed $extra --out "$out" --json > "$out.json" 2> "$out.log"
    echo "$cond s$seed exit $?" >> runs/variants/zca/status
  done
done
