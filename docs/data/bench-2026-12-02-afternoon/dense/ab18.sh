#!/bin/sh
# ResNet-18 steps, Node, default kernels: base ($BASE) and this checkout alternating
for r in $(seq 1 ${R:-3}); do
  for v in base new; do
    d=.; [ $v = base ] && d=$BASE
    (cd $d && node build/step_series.mjs --model resnet18 --threads ${T:-1} --steps ${S:-6} --kernels relaxed) | sed "s/^/{\"v\":\"node-$v\",\"r\":$r,\"x\":/;s/$/}/" >> $OUT
  done
done
