// MD5 (RFC 1321), small and incremental.
//
// Why a page needs MD5: R2 (and mpuflask) answer each part with its etag,
// the hex MD5 of the part's bytes, and the finished object's etag is
//   md5(md5(part 1) + md5(part 2) + ... as binary) in hex, then "-" and the count.
// Hashing each part here, before it is sent, lets the page check every etag
// the server answers and the final one, and, on resume, check that a part the
// server already holds has the bytes of this file.
// (The browser's crypto.subtle has SHA but no MD5, hence this file.)

// K[i] = floor(abs(sin(i + 1)) * 2^32), as 32-bit integers.
const K = new Int32Array(64);
for (let i = 0; i < 64; i++) {
  K[i] = Math.floor(Math.abs(Math.sin(i + 1)) * 2 ** 32) | 0;
}

// Left-rotation amounts: four per round, repeated.
const R1 = [7, 12, 17, 22];
const R2 = [5, 9, 14, 20];
const R3 = [4, 11, 16, 23];
const R4 = [6, 10, 15, 21];

function rotl(x, n) {
  return (x << n) | (x >>> (32 - n));
}

// One 64-byte block (as 16 little-endian 32-bit words in `x`) into `state`.
function transform(state, x) {
  let a = state[0];
  let b = state[1];
  let c = state[2];
  let d = state[3];
  let t;
  for (let i = 0; i < 16; i++) {
    t = d; d = c; c = b;
    b = (b + rotl((a + ((c & d) | (~c & t)) + K[i] + x[i]) | 0, R1[i & 3])) | 0;
    a = t;
  }
  for (let i = 16; i < 32; i++) {
    t = d; d = c; c = b;
    b = (b + rotl((a + ((t & c) | (~t & d)) + K[i] + x[(5 * i + 1) & 15]) | 0, R2[i & 3])) | 0;
    a = t;
  }
  for (let i = 32; i < 48; i++) {
    t = d; d = c; c = b;
    b = (b + rotl((a + (c ^ d ^ t) + K[i] + x[(3 * i + 5) & 15]) | 0, R3[i & 3])) | 0;
    a = t;
  }
  for (let i = 48; i < 64; i++) {
    t = d; d = c; c = b;
    b = (b + rotl((a + (d ^ (c | ~t)) + K[i] + x[(7 * i) & 15]) | 0, R4[i & 3])) | 0;
    a = t;
  }
  state[0] = (state[0] + a) | 0;
  state[1] = (state[1] + b) | 0;
  state[2] = (state[2] + c) | 0;
  state[3] = (state[3] + d) | 0;
}

/** An MD5 in progress: `update(bytes)` any number of times, then `digest()`. */
export class Md5 {
  constructor() {
    this.state = new Int32Array([0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476]);
    this.block = new Uint8Array(64); // bytes waiting for a full block
    this.blockLength = 0;
    this.length = 0; // bytes seen in all
    this.words = new Int32Array(16);
  }

  /** Add `bytes` (a Uint8Array) to the message. */
  update(bytes) {
    this.length += bytes.length;
    let offset = 0;
    if (this.blockLength > 0) {
      const take = Math.min(64 - this.blockLength, bytes.length);
      this.block.set(bytes.subarray(0, take), this.blockLength);
      this.blockLength += take;
      offset = take;
      if (this.blockLength < 64) return this;
      this.#consume(this.block, 0);
      this.blockLength = 0;
    }
    for (; offset + 64 <= bytes.length; offset += 64) {
      this.#consume(bytes, offset);
    }
    this.block.set(bytes.subarray(offset), 0);
    this.blockLength = bytes.length - offset;
    return this;
  }

  /** The 16-byte digest (the object must not be updated afterwards). */
  digest() {
    const bits = this.length * 8;
    // Pad: one 0x80 byte, zeros up to 56 mod 64, then the length in bits
    // as a 64-bit little-endian integer.
    const padLength = this.blockLength < 56 ? 56 - this.blockLength : 120 - this.blockLength;
    const tail = new Uint8Array(padLength + 8);
    tail[0] = 0x80;
    const view = new DataView(tail.buffer);
    view.setUint32(padLength, bits % 2 ** 32, true);
    view.setUint32(padLength + 4, Math.floor(bits / 2 ** 32), true);
    this.update(tail);
    const out = new Uint8Array(16);
    const outView = new DataView(out.buffer);
    for (let i = 0; i < 4; i++) outView.setInt32(i * 4, this.state[i], true);
    return out;
  }

  #consume(bytes, offset) {
    const x = this.words;
    for (let i = 0; i < 16; i++, offset += 4) {
      x[i] = bytes[offset] | (bytes[offset + 1] << 8) | (bytes[offset + 2] << 16) | (bytes[offset + 3] << 24);
    }
    transform(this.state, x);
  }
}

/** Lower-case hex of some bytes. */
export function toHex(bytes) {
  let hex = "";
  for (const byte of bytes) hex += byte.toString(16).padStart(2, "0");
  return hex;
}

/** The bytes of a hex string. */
export function fromHex(hex) {
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}

/** Base64 of some bytes (for the Content-MD5 header). */
export function toBase64(bytes) {
  return btoa(String.fromCharCode(...bytes));
}

/** The hex MD5 of a Uint8Array, in one go. */
export function md5Hex(bytes) {
  return toHex(new Md5().update(bytes).digest());
}

/**
 * The etag R2 gives an object completed from parts with these hex MD5s:
 * the MD5 of their binary digests, one after the other, then "-<count>".
 */
export function multipartEtag(partMd5s) {
  const hash = new Md5();
  for (const hex of partMd5s) hash.update(fromHex(hex));
  return `${toHex(hash.digest())}-${partMd5s.length}`;
}
