/**
 * The one file that touches the protobuf library: an ONNX model, described as plain data in
 * the shape of the official schema (onnx_pb.ts, generated from onnx.proto), to its wire bytes.
 * onnx.ts loads it with a dynamic import, so @bufbuild/protobuf is fetched and evaluated only
 * by a program that exports, and the npm bundle keeps it in a chunk of its own.
 */
import { create, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { ModelProtoSchema } from "./onnx_pb.ts";

export type ModelInit = MessageInitShape<typeof ModelProtoSchema>;

export function encodeModel(model: ModelInit): Uint8Array {
  return toBinary(ModelProtoSchema, create(ModelProtoSchema, model));
}
