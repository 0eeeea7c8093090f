declare module "sha256-file" {
  function sha256File(path: string): string;
  function sha256File(path: string, callback: (error: Error | null, hex: string | null) => void): void;
  export default sha256File;
}
