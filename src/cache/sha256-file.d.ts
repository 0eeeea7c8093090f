// The package ships no types; this is the part of its API we call.
declare module "sha256-file" {
  function sha256File(file: string, callback: (err: Error | null, hex: string | null) => void): void;
  function sha256File(file: string): string;
  export default sha256File;
}
