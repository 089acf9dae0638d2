/** `rg.recompute`: recomputation planned under a memory budget (checkpoint() itself is at the top level). */
export { blocksOf } from "./blocks.ts";
export { sequentialSegments } from "./sequential.ts";
