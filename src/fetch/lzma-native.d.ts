// The package ships no types; this is the part of its API we call.
declare module "lzma-native" {
  import type { Transform } from "node:stream";
  interface LzmaNative {
    createDecompressor(options?: { synchronous?: boolean; memlimit?: number }): Transform;
  }
  const lzma: LzmaNative;
  export default lzma;
}
