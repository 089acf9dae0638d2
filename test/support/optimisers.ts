/**
 * What the optimiser tests share with gen_fixtures.py's gen_optimisers: the small network
 * (conv → BN → ReLU, a strided conv without BN, two linear layers), its two parameter groups
 * (conv and linear weights, decayed; biases and BatchNorm without decay and at lr × lrScale)
 * and each fixture case's optimiser built from the case's metadata.
 */
import * as rg from "../../src/mod.ts";

export const OPTIMISER_CASES = ["adam", "adam_amsgrad", "adamw", "sgd", "lars", "lars_clip", "lamb", "lamb_clip", "scale_amended"] as const;
export type OptimiserCase = (typeof OPTIMISER_CASES)[number];

export interface CaseMeta {
  kind: "adam" | "adamw" | "sgd" | "lars" | "lamb" | "scale_amended";
  options: Record<string, number | boolean | number[] | null>;
  weight_decay: number;
  lr_scale: number;
  /** Parameter name → index in group order. */
  names: Record<string, number>;
  clamp: [number, number];
  eps: number;
}

export function optimiserNet(): rg.nn.Sequential {
  const { Conv2d, BatchNorm2d, ReLU, Flatten, Linear, Sequential } = rg.nn;
  return new Sequential(
    new Conv2d(1, 3, 3, { padding: 1 }), new BatchNorm2d(3), new ReLU(),
    new Conv2d(3, 4, 3, { stride: 2, padding: 1 }), new ReLU(), new Flatten(),
    new Linear(36, 5), new ReLU(), new Linear(5, 3),
  );
}

/** The fixture's optimiser for `meta` over `model`, in its two groups. */
export function makeOptimiser(model: rg.nn.Module, meta: CaseMeta): rg.optim.Optimizer {
  const named = [...model.namedParameters()];
  const isWeight = ([name, p]: [string, rg.Tensor]) => name.endsWith("weight") && p.rank > 1;
  const groups = [
    { params: named.filter(isWeight).map(([, p]) => p), weightDecay: meta.weight_decay },
    { params: named.filter((e) => !isWeight(e)).map(([, p]) => p), weightDecay: 0, lrScale: meta.lr_scale },
  ];
  const o = meta.options;
  const lr = o.lr as number;
  const betas = o.betas as [number, number] | undefined;
  switch (meta.kind) {
    case "adam":
    case "adamw": {
      const config = { lr, betas, eps: o.eps as number, amsgrad: o.amsgrad as boolean };
      return meta.kind === "adam" ? new rg.optim.Adam(groups, config) : new rg.optim.AdamW(groups, config);
    }
    case "sgd":
      return new rg.optim.SGD(groups, { lr, momentum: o.momentum as number, nesterov: o.nesterov as boolean });
    case "lars":
      return new rg.optim.LARS(groups, {
        lr, momentum: o.momentum as number, nesterov: (o.nesterov ?? false) as boolean, trustCoef: o.trust_coeff as number,
        eps: o.eps as number, trustClip: (o.trust_clip ?? false) as boolean, alwaysAdapt: (o.always_adapt ?? false) as boolean,
      });
    case "lamb":
      return new rg.optim.LAMB(groups, {
        lr, betas, eps: o.eps as number, maxGradNorm: o.max_grad_norm as number | null,
        trustClip: (o.trust_clip ?? false) as boolean, alwaysAdapt: (o.always_adapt ?? false) as boolean,
      });
    case "scale_amended":
      return new rg.optim.ScaleAmendedSGD(groups, {
        model, lr, momentum: o.momentum as number, nesterov: o.nesterov as boolean, clamp: meta.clamp, eps: meta.eps,
      });
  }
}
