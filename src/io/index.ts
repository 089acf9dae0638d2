/** `rg.io`: reading and writing weights (safetensors, PyTorch's names). */
export { readSafetensors, writeSafetensors, writeSafetensorsAsync, readSafetensorsMetadata } from "./state.ts";
export { parseSafetensors, serializeSafetensors, type SafetensorsDtype } from "./safetensors.ts";
export { renderCurves, type Run, type CurvePoint } from "./plot.ts";
export { stringifyRecord, parseRecord } from "./records.ts";
export { probeFigures, type ProbeRun } from "./probe_plots.ts";
export { toOnnx, OnnxExportError, ONNX_OPSET, type OnnxOptions } from "./onnx.ts";
