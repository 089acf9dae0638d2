#!/bin/sh
# The BatchNorm experiment of docs/diagnostics.md (Santurkar et al., "How does batch
# normalization help optimization?", NeurIPS 2018, at a small scale): VGG-11 on Fashion-MNIST
# with BatchNorm, without it and with noisy BatchNorm, plain SGD at a constant rate, probing
# the landscape along the gradient, internal covariate shift and the activations as it trains.
# Resumable: a finished run (model.safetensors) is skipped, an interrupted one continues from
# its last checkpoint (--resume), one that stopped before its first checkpoint starts over.
# Each finished run's config.json, metrics.jsonl and probes.jsonl are copied to $DATA.
#
#   npm run build && nohup nice -n 10 sh bench/batchnorm.sh >> runs/batchnorm.log 2>&1 &
#
# Settings by environment: SEEDS ("0 1 2"), CONDITIONS (names below), STEPS, PROBE_EVERY,
# WIDTH, OUT (runs/batchnorm), DATA (docs/data/batchnorm), CLI (dist/cli.mjs; a copy of it
# keeps a rebuild of the tree from changing the program halfway through the experiment).
set -eu
SEEDS=${SEEDS:-"0 1 2"}
CONDITIONS=${CONDITIONS:-"bn nobn noisy"}
STEPS=${STEPS:-200}
PROBE_EVERY=${PROBE_EVERY:-40}
WIDTH=${WIDTH:-0.125}
OUT=${OUT:-runs/batchnorm}
DATA=${DATA:-docs/data/batchnorm}
CLI=${CLI:-dist/cli.mjs}

# A condition's model flags: name[-lrX] → model and rate (default 0.1).
condition_flags() {
  case "$1" in
    bn*) model="--model vgg11-bn" ;;
    nobn*) model="--model vgg11" ;;
    noisy*) model="--model vgg11-bn --noisy-bn" ;;
    *) echo "unknown condition $1" >&2; exit 2 ;;
  esac
  lr=$(echo "$1" | sed -n 's/.*-lr\(.*\)$/\1/p')
  echo "$model --lr ${lr:-0.1}"
}

for seed in $SEEDS; do
  for condition in $CONDITIONS; do
    run="$OUT/$condition-s$seed"
    if [ -f "$run/model.safetensors" ]; then
      echo "$run: finished"
    elif [ -f "$run/checkpoint.safetensors" ]; then
      echo "$run: resuming"
      node "$CLI" train --resume "$run" --threads 1 --json > /dev/null 2>&1
    else
      echo "$run: starting"
      # shellcheck disable=SC2046 # the condition's flags are words
      node "$CLI" train $(condition_flags "$condition") --width "$WIDTH" --dataset fashion-mnist \
        --steps "$STEPS" --batch-size 128 --momentum 0 --no-nesterov --weight-decay 0 --schedule constant --warmup 0 \
        --augment none --seed "$seed" --threads 1 --save-every 10 \
        --probe landscape,ics,activations --probe-every "$PROBE_EVERY" \
        --out "$run" --overwrite --json > /dev/null 2>&1
    fi
    mkdir -p "$DATA/$condition-s$seed"
    cp "$run/config.json" "$run/metrics.jsonl" "$run/probes.jsonl" "$DATA/$condition-s$seed/"
    echo "$run: done $(date -u +%H:%M:%S)"
  done
done
