#!/bin/sh
# The BatchNorm experiment of docs/batchnorm.md (Santurkar et al., "How does batch
# normalization help optimization?", NeurIPS 2018, at a small scale): VGG-11 on Fashion-MNIST
# with BatchNorm, without it and with noisy BatchNorm, plain SGD at a constant rate, probing
# the landscape along the gradient, internal covariate shift and the activations as it trains.
# Resumable: a finished run (model.safetensors) is skipped, an interrupted one continues from
# its last checkpoint (--resume), one that stopped before its first checkpoint starts over.
# A run that stops on a non-finite loss (train exits 1: "training diverged") is recorded as
# such (a `diverged` record in its metrics.jsonl, its stderr in train.log, a `stopped` marker)
# and not retried; the experiment goes on. Each finished or stopped run's config.json,
# metrics.jsonl and probes.jsonl (and train.log, which git ignores) are copied to $DATA.
#
#   npm run build && nohup nice -n 10 sh bench/batchnorm.sh >> runs/batchnorm.log 2>&1 &
#
# Settings by environment: SEEDS ("0 1 2"), CONDITIONS (names below, e.g. "bn-lr0.5 nobn-lr0.5"),
# STEPS, PROBE_EVERY, PROBES (landscape,ics,activations; e.g. adding curvature@100), WIDTH, OUT (runs/batchnorm), DATA (docs/data/batchnorm), CLI (dist/cli.mjs; a copy of it
# keeps a rebuild of the tree from changing the program halfway through the experiment).
set -eu
SEEDS=${SEEDS:-"0 1 2"}
CONDITIONS=${CONDITIONS:-"bn nobn noisy"}
STEPS=${STEPS:-200}
PROBE_EVERY=${PROBE_EVERY:-40}
PROBES=${PROBES:-landscape,ics,activations}
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
    status=0
    if [ -f "$run/model.safetensors" ] || [ -f "$run/stopped" ]; then
      echo "$run: finished"
    elif [ -f "$run/checkpoint.safetensors" ]; then
      echo "$run: resuming"
      node "$CLI" train --resume "$run" --threads 1 --json > /dev/null 2>> "$run/train.log" || status=$?
    else
      echo "$run: starting"
      mkdir -p "$run"
      # shellcheck disable=SC2046 # the condition's flags are words
      node "$CLI" train $(condition_flags "$condition") --width "$WIDTH" --dataset fashion-mnist \
        --steps "$STEPS" --batch-size 128 --momentum 0 --no-nesterov --weight-decay 0 --schedule constant --warmup 0 \
        --augment none --seed "$seed" --threads 1 --save-every 10 \
        --probe "$PROBES" --probe-every "$PROBE_EVERY" \
        --out "$run" --overwrite --json > /dev/null 2> "$run/train.log.new" || status=$?
      mv "$run/train.log.new" "$run/train.log"
    fi
    if [ "$status" -ne 0 ]; then
      if grep -q "training diverged" "$run/train.log"; then
        echo "$run: stopped, diverged: $(tail -n 1 "$run/train.log")"
        touch "$run/stopped"
      else
        echo "$run: failed (exit $status), see $run/train.log" >&2
        exit "$status"
      fi
    fi
    mkdir -p "$DATA/$condition-s$seed"
    for file in config.json metrics.jsonl probes.jsonl train.log; do
      if [ -s "$run/$file" ]; then cp "$run/$file" "$DATA/$condition-s$seed/"; fi
    done
    echo "$run: done $(date -u +%H:%M:%S)"
  done
done
