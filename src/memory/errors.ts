/**
 * The errors of recomputation and memory planning: a checkpointed function that does not
 * compute the same thing when run again, and a memory budget no plan can meet (it names the
 * smallest budget that can be met, so the caller knows what to ask for instead).
 */
import { RetrogradError } from "../errors.ts";

/** The recomputation of a checkpointed function saved other tensors than its first run did. */
export class RecomputationError extends RetrogradError {}

/** No plan fits the memory budget; `smallestFeasibleBytes` is the least predicted peak of any plan. */
export class MemoryBudgetError extends RetrogradError {
  constructor(message: string, readonly budgetBytes: number, readonly smallestFeasibleBytes: number) {
    super(message);
  }
}
