// Uppy's S3 plugin (@uppy/aws-s3, Uppy 5) uploading through mpuflask.
//
//   import { Uppy, Dashboard, AwsS3 } from "./uppy.min.mjs";  // Uppy 5's bundle
//   import { mpuflaskS3Options } from "./mpuflask-uppy.js";    // this file
//
//   new Uppy()
//     .use(Dashboard, { inline: true, target: "#uppy" })
//     .use(AwsS3, mpuflaskS3Options({ server: "https://up.example.com", token }));
//
// Options:
//   server       mpuflask's URL. It must list this page's origin in
//                MPUFLASK_CORS_ORIGINS: Uppy reads each part's etag from the
//                ETag header, which a browser shows only to a granted origin.
//   token        sent as `Authorization: Bearer <token>` (MPUFLASK_AUTH_TOKENS); or
//   signer       the URL of your signing endpoint (examples/signing_endpoint.py),
//                asked for every request: POST {method, key, action, uploadId,
//                partNumber} -> {"url": "<signed URL>"}, with its cookies.
//                With neither, requests carry no credential.
//   key          (file) => the object's key; the file's name by default.
//   minPartSize  the server's MPUFLASK_MIN_PART_SIZE, if above 5 MiB.
//
// Uppy cuts each file into parts and sends them itself, up to 6 requests at a
// time (a file of at most 5 MiB is one part); its pause and resume ask
// mpu-listparts which parts the server holds and send only the others; cancel
// aborts the upload (mpu-abort). Keep shouldUseMultipart true: for a file it
// is false for, Uppy wants a single-request upload, which mpuflask has not.

const MIB = 1024 * 1024;
const MAX_PARTS = 10000;

/**
 * The URL path of a key: every segment percent-encoded (the server decodes
 * the path), the whole key as one segment if a segment is "." or "..", which
 * a browser would resolve away.
 */
function keyPath(key) {
  const segments = key.split("/");
  if (segments.some((s) => s === "." || s === "..")) return encodeURIComponent(key);
  return segments.map(encodeURIComponent).join("/");
}

/**
 * An Error with the server's own text ("mpu-create: Unauthorized: invalid
 * bearer token"), or the signing endpoint's ({"error": "..."} or text).
 */
async function refusal(what, response) {
  let text = (await response.text()).trim();
  try {
    const said = JSON.parse(text).error;
    if (typeof said === "string") text = said;
  } catch {
    // not JSON: the text as it is
  }
  return new Error(`${what}: ${text || `HTTP ${response.status}`}`);
}

/** The options of Uppy's AwsS3 plugin for an mpuflask server. */
export function mpuflaskS3Options({
  server,
  token = null,
  signer = null,
  key = (file) => file.name,
  minPartSize = 5 * MIB,
}) {
  const base = server.replace(/\/+$/, "");

  /** Where to send one request, and its headers, per the credential in use. */
  async function target(method, objectKey, action, { uploadId = null, partNumber = null, signal } = {}) {
    if (signer) {
      const response = await fetch(signer, {
        method: "POST",
        credentials: "include",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ method, key: objectKey, action, uploadId, partNumber }),
        signal,
      });
      if (!response.ok) throw await refusal(`signing ${action}`, response);
      return { url: (await response.json()).url, headers: {} };
    }
    const query = new URLSearchParams({ action });
    if (uploadId !== null) query.set("uploadId", uploadId);
    if (partNumber !== null) query.set("partNumber", String(partNumber));
    const headers = token ? { Authorization: `Bearer ${token}` } : {};
    return { url: `${base}/${keyPath(objectKey)}?${query}`, headers };
  }

  /** One request of the API other than a part (Uppy sends the parts). */
  async function request(method, objectKey, action, { uploadId, json, contentType, signal } = {}) {
    const { url, headers } = await target(method, objectKey, action, { uploadId, signal });
    if (contentType) headers["Content-Type"] = contentType;
    if (json) headers["Content-Type"] = "application/json";
    const body = json ? JSON.stringify(json) : undefined;
    const response = await fetch(url, { method, headers, body, signal });
    if (!response.ok) throw await refusal(action, response);
    return response;
  }

  async function create(file, signal) {
    // The file's type becomes the object's Content-Type.
    const answer = await request("POST", key(file), "mpu-create", { contentType: file.type, signal });
    const { key: created, uploadId } = await answer.json();
    return { key: created, uploadId };
  }

  async function complete(objectKey, uploadId, parts, signal) {
    const listed = parts.map(({ PartNumber, ETag }) => ({ partNumber: PartNumber, etag: ETag }));
    const answer = await request("POST", objectKey, "mpu-complete", {
      uploadId,
      json: { parts: listed },
      signal,
    });
    const location = `${base}/${keyPath(objectKey)}?action=get`;
    return { location, key: objectKey, etag: answer.headers.get("ETag") };
  }

  async function abort(objectKey, uploadId, signal) {
    await request("DELETE", objectKey, "mpu-abort", { uploadId, signal });
  }

  return {
    shouldUseMultipart: true,
    // Parts of whole MiB, all the same size but the last (R2's rule), at least
    // minPartSize (Uppy itself never goes below 5 MiB), at most 10,000 of them.
    getChunkSize: (file) => Math.max(minPartSize, Math.ceil(file.size / MAX_PARTS / MIB) * MIB),

    createMultipartUpload: (file, signal) => create(file, signal),

    async signPart(file, { uploadId, key: objectKey, partNumber, signal }) {
      const { url, headers } = await target("PUT", objectKey, "mpu-uploadpart", { uploadId, partNumber, signal });
      return { method: "PUT", url, headers };
    },

    async listParts(file, { uploadId, key: objectKey, signal }) {
      const answer = await request("GET", objectKey, "mpu-listparts", { uploadId, signal });
      const { parts } = await answer.json();
      return parts.map((p) => ({ PartNumber: p.partNumber, Size: p.size, ETag: p.etag }));
    },

    completeMultipartUpload: (file, { uploadId, key: objectKey, parts, signal }) =>
      complete(objectKey, uploadId, parts, signal),

    abortMultipartUpload: (file, { uploadId, key: objectKey, signal }) =>
      abort(objectKey, uploadId, signal),
  };
}
