// Compiled with consumer.ts: each line below is wrong, and the shipped declarations must say
// so. Were the package typed `any`, each @ts-expect-error would be unused, which tsc reports.
import * as rg from "retrograd";

// @ts-expect-error numClasses is a number
rg.models.resnet20({ numClasses: "ten" });
// @ts-expect-error no such option
new rg.optim.SGD([], { lr: 0.1, mommentum: 0.9 });
// @ts-expect-error toOnnx needs the input shape
void rg.io.toOnnx(rg.models.resnet20());
