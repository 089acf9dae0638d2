/**
 * Weight initialisers (torch.nn.init's names), drawing from the global seeded stream
 * (src/random.ts) on the device, so a seed gives the same weights on every runtime. Fan computations
 * follow torch.nn.init.
 */
import { ValueError } from "../errors.ts";
import type { Tensor } from "../tensor.ts";

/** fan_in and fan_out of a [out, in, ...kernel] weight, as torch.nn.init computes them. */
export function fans(t: Tensor): { fanIn: number; fanOut: number } {
  if (t.rank < 2) throw new ValueError(`init: fan needs a weight of rank ≥ 2, got [${t.shape.join(", ")}]`);
  const receptive = t.size / (t.shape[0] * t.shape[1]);
  return { fanIn: t.shape[1] * receptive, fanOut: t.shape[0] * receptive };
}

export function uniform_(t: Tensor, low: number, high: number): Tensor {
  return t.uniform_(low, high);
}

export function normal_(t: Tensor, mean: number, std: number): Tensor {
  return t.normal_(mean, std);
}

export function constant_(t: Tensor, value: number): Tensor {
  return t.fill_(value);
}

/** He normal init for ReLU nets: std = √(2 / fan), fan_out by default (torchvision ResNet). */
export function kaimingNormal_(t: Tensor, mode: "fanIn" | "fanOut" = "fanOut"): Tensor {
  return normal_(t, 0, Math.sqrt(2 / fans(t)[mode]));
}

/** PyTorch's default for Linear and Conv weights: U(−1/√fan_in, 1/√fan_in). */
export function defaultWeight_(t: Tensor): Tensor {
  const bound = 1 / Math.sqrt(fans(t).fanIn);
  return uniform_(t, -bound, bound);
}
