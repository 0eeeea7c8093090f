// Tarballs made entry by entry with tar-stream, for tests that need an archive no tar
// command would write (hostile names, links, odd modes, a chosen order).
import tar from "tar-stream";
import type { Header } from "tar-stream";

export type TarEntry = { header: Header | (Partial<Header> & { name: string }); body?: string | Buffer };

/** A tarball made with tar-stream, entries in the given order. */
export async function buildTar(entries: TarEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of pack) chunks.push(c as Buffer);
  })();
  for (const e of entries) {
    await new Promise<void>((resolve, reject) =>
      pack.entry(e.header as Header, e.body ?? "", (err) => (err ? reject(err) : resolve())),
    );
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}
