// The xz decoder's memory limit, kept by reading the container's headers
// before the bytes reach the decoder. The fast decoder (node-liblzma) takes
// no limit of its own, so every block header is read here: the LZMA2
// dictionary it declares is what decoding the block allocates. To find the
// next header, the walk follows the LZMA2 chunk headers (each states its
// size), the index and the stream footer, so it reads a few bytes in every
// 64 KiB and never the data. Layout: https://tukaani.org/xz/xz-file-format.txt
import { crc32 } from "node:zlib";

/** liblzma's result names for what the walk refuses, so callers word them as the xz tool does. */
export type XzRefusal =
  | "LZMA_FORMAT_ERROR"
  | "LZMA_DATA_ERROR"
  | "LZMA_OPTIONS_ERROR"
  | "LZMA_MEMLIMIT_ERROR";

export class XzRefused extends Error {
  readonly refusal: XzRefusal;
  constructor(refusal: XzRefusal) {
    super(refusal);
    this.refusal = refusal;
  }
}

const MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);
const STREAM_HEADER = 12;
const LZMA2 = 0x21;
/** Bytes of the integrity check after each block, by the check type in the stream flags. */
const CHECK_SIZE = [0, 4, 4, 4, 8, 8, 8, 16, 16, 16, 32, 32, 32, 64, 64, 64];
/** What the LZMA2 decoder allocates beyond its dictionary (liblzma's coder state), rounded up. */
const DECODER_OVERHEAD = 1 << 20;

/** The dictionary size an LZMA2 properties byte declares (0–40; 40 is 4 GiB − 1). */
export function lzma2Dictionary(prop: number): number {
  return prop === 40 ? 0xffff_ffff : (2 | (prop & 1)) * 2 ** (Math.floor(prop / 2) + 11);
}

type Handler = (bytes: Buffer) => void;

/**
 * Walks xz input as it is fed, throwing XzRefused when a block would need more decoder memory than
 * `memlimit`, or when a header is one liblzma would refuse too (with the same result name, so the
 * walk never makes an error the decoder would not).
 */
export class XzHeaderWalk {
  readonly #memlimit: number;
  /** Bytes still to collect for `#then`, and where they go. */
  #want = STREAM_HEADER;
  readonly #held = Buffer.alloc(1024); // a block header is at most 1,024 bytes
  #have = 0;
  #then: Handler = (b) => this.#streamHeader(b);
  /** Bytes to pass over before collecting again (chunk data, padding, checks). */
  #skip = 0;
  #checkSize = 0;
  #streams = 0;
  #blocks = 0;
  /** Compressed bytes of the current block so far, for its padding. */
  #blockBytes = 0;
  /** Bytes of the index so far, for its padding; the records still to read. */
  #indexBytes = 0;
  #records = 0;
  #paddingBytes = 0;

  constructor(memlimit: number) {
    this.#memlimit = memlimit;
  }

  feed(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, chunk.length - at);
        this.#skip -= n;
        at += n;
        continue;
      }
      const n = Math.min(this.#want - this.#have, chunk.length - at);
      chunk.copy(this.#held, this.#have, at, at + n);
      this.#have += n;
      at += n;
      if (this.#have === this.#want) {
        this.#have = 0;
        this.#then(this.#held.subarray(0, this.#want));
      }
    }
  }

  #collect(want: number, then: Handler): void {
    this.#want = want;
    this.#then = then;
  }

  #streamHeader(b: Buffer): void {
    // After a first stream the input is known to be xz, so what follows it is damage, as liblzma says.
    if (!b.subarray(0, 6).equals(MAGIC))
      throw new XzRefused(this.#streams === 0 ? "LZMA_FORMAT_ERROR" : "LZMA_DATA_ERROR");
    this.#streams++;
    if (crc32(b.subarray(6, 8)) !== b.readUInt32LE(8)) throw new XzRefused("LZMA_DATA_ERROR");
    if (b[6] !== 0 || (b[7]! & 0xf0) !== 0) throw new XzRefused("LZMA_OPTIONS_ERROR");
    this.#checkSize = CHECK_SIZE[b[7]! & 0x0f]!;
    this.#blocks = 0;
    this.#collect(1, (c) => this.#blockOrIndex(c[0]!));
  }

  #blockOrIndex(first: number): void {
    if (first === 0) {
      this.#indexBytes = 1;
      this.#varint((count) => {
        if (count !== this.#blocks) throw new XzRefused("LZMA_DATA_ERROR");
        this.#records = count * 2; // an unpadded size and an uncompressed size each
        this.#indexRecords();
      });
      return;
    }
    const size = (first + 1) * 4;
    this.#collect(size - 1, (rest) => this.#blockHeader(first, rest));
  }

  #blockHeader(first: number, rest: Buffer): void {
    const header = Buffer.concat([Buffer.of(first), rest]);
    const body = header.length - 4;
    if (crc32(header.subarray(0, body)) !== header.readUInt32LE(body)) throw new XzRefused("LZMA_DATA_ERROR");
    const flags = header[1]!;
    if ((flags & 0x3c) !== 0) throw new XzRefused("LZMA_OPTIONS_ERROR");
    let at = 2;
    const vli = (): number => {
      let value = 0;
      for (let i = 0; i < 9; i++) {
        if (at >= body) throw new XzRefused("LZMA_DATA_ERROR");
        const byte = header[at++]!;
        value += (byte & 0x7f) * 2 ** (7 * i);
        if ((byte & 0x80) === 0) return value;
      }
      throw new XzRefused("LZMA_DATA_ERROR");
    };
    if (flags & 0x40) vli(); // compressed size
    if (flags & 0x80) vli(); // uncompressed size
    let last: { id: number; props: Buffer } | undefined;
    for (let i = 0; i <= (flags & 0x03); i++) {
      const id = vli();
      const size = vli();
      if (at + size > body) throw new XzRefused("LZMA_DATA_ERROR");
      last = { id, props: header.subarray(at, at + size) };
      at += size;
    }
    // Only LZMA2 ends a chain in .xz, and its one properties byte is the dictionary size.
    if (last?.id !== LZMA2 || last.props.length !== 1 || last.props[0]! > 40)
      throw new XzRefused("LZMA_OPTIONS_ERROR");
    if (lzma2Dictionary(last.props[0]!) + DECODER_OVERHEAD > this.#memlimit)
      throw new XzRefused("LZMA_MEMLIMIT_ERROR");
    this.#blocks++;
    this.#blockBytes = 0;
    this.#collect(1, (c) => this.#lzma2Control(c[0]!));
  }

  /** An LZMA2 chunk's control byte: the end of the block's data, an uncompressed chunk, or an LZMA chunk. */
  #lzma2Control(control: number): void {
    this.#blockBytes++;
    if (control === 0) {
      // Padding to four bytes, then the check; then the next block or the index.
      this.#skip = ((4 - (this.#blockBytes % 4)) % 4) + this.#checkSize;
      this.#collect(1, (c) => this.#blockOrIndex(c[0]!));
    } else if (control === 1 || control === 2) {
      this.#collect(2, (b) => this.#chunk(2, b.readUInt16BE(0) + 1));
    } else if (control >= 0x80) {
      this.#collect(control >= 0xc0 ? 5 : 4, (b) => this.#chunk(b.length, b.readUInt16BE(2) + 1));
    } else {
      throw new XzRefused("LZMA_DATA_ERROR");
    }
  }

  #chunk(headerRest: number, data: number): void {
    this.#blockBytes += headerRest + data;
    this.#skip = data;
    this.#collect(1, (c) => this.#lzma2Control(c[0]!));
  }

  /** A multibyte integer of the index, byte by byte (it may span chunks). */
  #varint(then: (value: number) => void): void {
    let value = 0;
    let i = 0;
    const next: Handler = (b) => {
      this.#indexBytes++;
      value += (b[0]! & 0x7f) * 2 ** (7 * i++);
      if ((b[0]! & 0x80) === 0) then(value);
      else if (i === 9) throw new XzRefused("LZMA_DATA_ERROR");
      else this.#collect(1, next);
    };
    this.#collect(1, next);
  }

  #indexRecords(): void {
    if (this.#records > 0) {
      this.#records--;
      this.#varint(() => this.#indexRecords());
      return;
    }
    // Padding to four bytes, the index's CRC32, then the stream footer.
    this.#skip = ((4 - (this.#indexBytes % 4)) % 4) + 4;
    this.#collect(STREAM_HEADER, (footer) => {
      if (footer[10] !== 0x59 || footer[11] !== 0x5a) throw new XzRefused("LZMA_DATA_ERROR");
      this.#paddingBytes = 0;
      this.#collect(1, (c) => this.#streamPadding(c[0]!));
    });
  }

  /** Zero bytes in fours between concatenated streams, then the next stream's header. */
  #streamPadding(byte: number): void {
    if (byte === 0) {
      this.#paddingBytes++;
      this.#collect(1, (c) => this.#streamPadding(c[0]!));
      return;
    }
    if (this.#paddingBytes % 4 !== 0) throw new XzRefused("LZMA_DATA_ERROR");
    this.#held[0] = byte;
    this.#have = 1;
    this.#collect(STREAM_HEADER, (b) => this.#streamHeader(b));
  }
}
