// How a file is cut into parts: R2's rules, the same as the Python client's
// (mpuflask/client/parts.py), so the page and `mpuflask upload` cut a file alike.
//
// R2's rules: at most 10,000 parts; every part but the last has the same size,
// at least the server's minimum (5 MiB unless configured) and at most its
// maximum (5 GiB); the last part holds the rest and may be smaller.

export const MIB = 1024 * 1024;

/**
 * The part size for a file of `size` bytes: the smallest whole number of MiB
 * (and at least the server's minimum) that keeps the count within the limit.
 * Throws an Error naming the rule when no size fits.
 */
export function choosePartSize(size, limits) {
  const needed = Math.ceil(size / limits.maxParts);
  const partSize = Math.max(limits.minPartSize, Math.ceil(needed / MIB) * MIB);
  if (partSize > limits.maxPartSize) {
    throw new Error(
      `a file of ${size} bytes needs parts over ${limits.maxPartSize} bytes ` +
        `to fit in ${limits.maxParts} parts`,
    );
  }
  return partSize;
}

/** How many parts: 0 for an empty file (complete with no parts makes an empty object). */
export function partCount(size, partSize) {
  return Math.ceil(size / partSize);
}

/** Where part `n` (1-based) lies in the file: [start, end). */
export function partSpan(n, size, partSize) {
  const start = (n - 1) * partSize;
  return { start, end: Math.min(start + partSize, size) };
}

/**
 * Whether `partSize` (from a resume record) still cuts a file of `size`
 * bytes by the rules; null when it does, else why not.
 */
export function partSizeProblem(size, partSize, limits) {
  if (!Number.isInteger(partSize) || partSize <= 0) return "the part size is not a positive integer";
  if (partSize > limits.maxPartSize) return `parts over ${limits.maxPartSize} bytes are refused`;
  const count = partCount(size, partSize);
  if (count > 1 && partSize < limits.minPartSize) return `parts under ${limits.minPartSize} bytes are refused`;
  if (count > limits.maxParts) return `more than ${limits.maxParts} parts`;
  return null;
}
