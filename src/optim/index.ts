/** `rg.optim`: optimisers and learning-rate schedules. */
export { SGD, type SGDConfig } from "./sgd.ts";
export * as schedules from "./schedule.ts";
export type { Schedule } from "./schedule.ts";
