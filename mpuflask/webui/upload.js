// The multipart flow, step by step: create -> parts -> complete.
//
//   1. create    POST   /<key>?action=mpu-create                 -> {"uploadId"}
//   2. parts     PUT    /<key>?action=mpu-uploadpart&uploadId=U&partNumber=N
//                       (body: the part's bytes)                 -> {"etag"}
//                several at once, in any order, each retried on its own
//   3. complete  POST   /<key>?action=mpu-complete&uploadId=U
//                       {"parts": [{"partNumber", "etag"}, ...]}  -> header etag
//   (resume)     GET    /<key>?action=mpu-listparts&uploadId=U    -> {"parts": [...]}
//   (cancel)     DELETE /<key>?action=mpu-abort&uploadId=U
//
// An Upload runs these for one file and reports what it does through
// `events` (see the class), so the page (app.js) only draws.

import { ApiError, abortError } from "/?asset=api.js";
import { Md5, fromHex, multipartEtag, toBase64, toHex } from "/?asset=md5.js";
import { choosePartSize, partCount, partSizeProblem, partSpan } from "/?asset=parts.js";
import { loadRecord, removeRecord, saveRecord } from "/?asset=resume.js";

/** R2's code for "The specified multipart upload does not exist." */
const NO_SUCH_UPLOAD = "(10024)";

/** Hash this many bytes between yields, so the page stays responsive. */
const HASH_STEP = 4 * 1024 * 1024;

function isNoSuchUpload(error) {
  return error instanceof ApiError && error.message.includes(NO_SUCH_UPLOAD);
}

/** The hex MD5 of `bytes`, letting the browser breathe between steps. */
async function md5Of(bytes, signal) {
  const hash = new Md5();
  for (let offset = 0; offset < bytes.length; offset += HASH_STEP) {
    hash.update(bytes.subarray(offset, offset + HASH_STEP));
    if (offset + HASH_STEP < bytes.length) await new Promise((resolve) => setTimeout(resolve, 0));
    if (signal.aborted) throw abortError();
  }
  return toHex(hash.digest());
}

/**
 * Bytes done and the rate they go at, for the progress bar and the ETA.
 * The rate counts only bytes sent by this page load, over the last seconds,
 * so parts the server already had (on resume) do not make it look fast.
 */
class Meter {
  constructor(total, partCount) {
    this.total = total;
    this.partCount = partCount;
    this.finished = 0; // bytes of parts done (sent, or found on the server)
    this.partsDone = 0;
    this.inFlight = new Map(); // part number -> bytes of it sent so far
    this.sentThisLoad = 0; // bytes of finished parts sent by this page load
    this.samples = []; // [time ms, bytes sent by this load] over the last seconds
  }

  get sending() {
    let bytes = 0;
    for (const sent of this.inFlight.values()) bytes += sent;
    return bytes;
  }

  snapshot() {
    const now = performance.now();
    const sent = this.sentThisLoad + this.sending;
    this.samples.push([now, sent]);
    while (this.samples.length > 2 && now - this.samples[0][0] > 5000) this.samples.shift();
    const [t0, b0] = this.samples[0];
    const rate = now - t0 > 250 ? ((sent - b0) * 1000) / (now - t0) : null; // bytes/s
    const done = Math.min(this.total, this.finished + this.sending);
    const eta = rate ? (this.total - done) / rate : null; // seconds
    return { total: this.total, done, partsDone: this.partsDone, partCount: this.partCount, rate, eta };
  }
}

/**
 * One file going to one key. `events` receives:
 *   status(text)     - a step of the flow, worth announcing;
 *   progress(state)  - {total, done, partsDone, partCount, rate, eta}, often;
 *   started(record)  - once the uploadId is known (new or resumed).
 * `run()` resolves with {key, uploadId, etag, size, partCount, partSize,
 * resumed, skipped, sent}; `cancel()` stops it and aborts it on the server.
 */
export class Upload {
  constructor({ api, file, key, limits, concurrency, events }) {
    this.api = api;
    this.file = file;
    this.key = key;
    this.limits = limits;
    this.concurrency = Math.max(1, Math.floor(concurrency) || 1);
    this.events = events;
    this.controller = new AbortController(); // fired by cancel()
    this.record = null;
    this.running = null;
  }

  run() {
    this.running = this.#run();
    return this.running;
  }

  async #run() {
    const { api, file, key, events } = this;
    const signal = this.controller.signal;

    // -- 0. resume? ----------------------------------------------------------
    // A record in localStorage says this file was already going to this key.
    // The server, not the record, says which parts arrived: ask it.
    let serverParts = new Map();
    let record = loadRecord(file, key);
    let resumed = false;
    if (record) {
      const problem = partSizeProblem(file.size, record.partSize, this.limits);
      if (problem) {
        events.status(`The saved upload of this file cannot be resumed (${problem}); starting a new one.`);
        // Best effort: the old upload would otherwise wait for its expiry.
        api.request("DELETE", key, "mpu-abort", { uploadId: record.uploadId }).catch(() => {});
        removeRecord(record);
        record = null;
      }
    }
    this.record = record; // from here a cancel aborts it on the server
    if (record) {
      events.status(`Resuming upload ${record.uploadId}: asking the server which parts it has…`);
      try {
        const answer = await api.request("GET", key, "mpu-listparts", { uploadId: record.uploadId, signal });
        for (const part of answer.json().parts) serverParts.set(part.partNumber, part);
        resumed = true;
      } catch (error) {
        if (!isNoSuchUpload(error)) throw error;
        events.status("The saved upload is gone from the server (expired, completed or cancelled); starting a new one.");
        removeRecord(record);
        record = null;
        this.record = null;
        serverParts = new Map();
      }
    }

    // -- 1. create -----------------------------------------------------------
    // Choose the part size first (R2's rules, parts.js), then ask for an
    // uploadId. The Content-Type given here becomes the object's. The record
    // is saved at once, so a reload from here on resumes this upload.
    if (!record) {
      const partSize = choosePartSize(file.size, this.limits);
      events.status("Creating the upload…");
      const headers = file.type ? { "Content-Type": file.type } : {};
      const answer = await api.request("POST", key, "mpu-create", { headers, signal });
      record = saveRecord(file, key, answer.json().uploadId, partSize);
    }
    this.record = record;
    events.started(record);
    const { uploadId, partSize } = record;
    const count = partCount(file.size, partSize);
    const meter = new Meter(file.size, count);
    const onServer = [...serverParts.values()].filter((p) => p.partNumber <= count).length;
    events.status(
      resumed
        ? `Resuming upload ${uploadId}: the server holds ${onServer} of ${count} parts; checking them and sending the rest, ${this.concurrency} at a time.`
        : `Upload ${uploadId} created: ${count} part${count === 1 ? "" : "s"} of up to ${partSize} bytes, ${this.concurrency} at a time.`,
    );
    events.progress(meter.snapshot());

    // -- 2. parts --------------------------------------------------------------
    // `concurrency` workers take the next part number until none is left.
    // For each part: read its bytes, hash them (MD5), then
    //   - if the server already holds this part with the same size and etag
    //     (a resume), count it as done without sending it;
    //   - else PUT it, with Content-MD5 so the server checks the bytes it got,
    //     and check that the etag it answers is our MD5.
    // The first failure (after its retries) stops the other workers.
    const md5s = new Array(count);
    const stopAll = new AbortController();
    const stop = () => stopAll.abort();
    signal.addEventListener("abort", stop, { once: true });
    let next = 1;
    let firstError = null;
    let skipped = 0;
    let sent = 0;
    let milestone = 0;
    const report = () => {
      const state = meter.snapshot();
      events.progress(state);
      const quarter = Math.floor((4 * state.done) / Math.max(1, state.total));
      if (quarter > milestone && quarter < 4) {
        milestone = quarter;
        events.status(`${quarter * 25}% uploaded (${state.partsDone} of ${count} parts).`);
      }
    };

    const sendPart = async (n) => {
      const { start, end } = partSpan(n, file.size, partSize);
      // The very bytes hashed are the bytes sent: a file that changes on disk
      // meanwhile cannot make the etag and the body disagree.
      const bytes = new Uint8Array(await file.slice(start, end).arrayBuffer());
      const md5 = await md5Of(bytes, stopAll.signal);
      const held = serverParts.get(n);
      if (held && held.size === bytes.length && held.etag === md5) {
        skipped += 1;
      } else {
        const answer = await api.request("PUT", key, "mpu-uploadpart", {
          uploadId,
          partNumber: n,
          // As a Blob: a typed-array body is also copied into the request's
          // inspection data whenever DevTools (or a test driver) watches the
          // network, which made uploads 4x slower under Playwright.
          body: new Blob([bytes]),
          headers: { "Content-MD5": toBase64(fromHex(md5)), ...(file.type ? { "Content-Type": file.type } : {}) },
          signal: stopAll.signal,
          onProgress: (loaded) => {
            meter.inFlight.set(n, loaded);
            report();
          },
          onRetry: ({ attempt, delayMs, error }) =>
            events.status(
              `Part ${n}: ${error.message}; trying again in ${(delayMs / 1000).toFixed(1)} s (attempt ${attempt + 1}).`,
            ),
        });
        const etag = answer.json().etag;
        if (etag !== md5) {
          throw new ApiError(`part ${n}: the server answered etag ${etag}, but the MD5 of the bytes sent is ${md5}`, 0);
        }
        meter.sentThisLoad += bytes.length;
        sent += 1;
      }
      md5s[n - 1] = md5;
      meter.inFlight.delete(n);
      meter.finished += bytes.length;
      meter.partsDone += 1;
      report();
    };

    const worker = async () => {
      while (next <= count && firstError === null && !stopAll.signal.aborted) {
        const n = next++;
        try {
          await sendPart(n);
        } catch (error) {
          if (firstError === null && !signal.aborted) {
            firstError = new ApiError(`part ${n}: ${error.message}`, error.status ?? 0);
          }
          stopAll.abort();
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, count) }, worker));
    signal.removeEventListener("abort", stop);
    if (signal.aborted) throw abortError();
    if (firstError) throw firstError;

    // -- 3. complete -----------------------------------------------------------
    // List every part in ascending order with its etag. The server assembles
    // the object and answers its etag: md5 of the parts' binary MD5s, "-N".
    // We computed the same from our own hashes, so the two must agree.
    const expected = multipartEtag(md5s);
    events.status(`All ${count} parts are on the server; completing the upload…`);
    const parts = md5s.map((etag, i) => ({ partNumber: i + 1, etag }));
    let retried = false;
    let etagHeader;
    try {
      const answer = await api.request("POST", key, "mpu-complete", {
        uploadId,
        body: JSON.stringify({ parts }),
        headers: { "Content-Type": "application/json" },
        signal,
        onRetry: ({ error }) => {
          retried = true;
          events.status(`Completing: ${error.message}; trying again.`);
        },
      });
      etagHeader = answer.header("etag");
    } catch (error) {
      // A complete that succeeded but whose answer was lost is retried and
      // then finds the upload gone (10024): if the object there has our etag,
      // it was ours.
      if (!(retried && isNoSuchUpload(error))) throw error;
      const head = await api.request("HEAD", key, "get", { signal });
      etagHeader = head.header("etag");
    }
    const etag = (etagHeader ?? "").replace(/^W\//, "").replace(/"/g, "");
    if (etag !== expected) {
      throw new ApiError(`the server's etag ${etagHeader} is not the one computed here ("${expected}")`, 0);
    }
    removeRecord(record);
    return { key, uploadId, etag, size: file.size, partCount: count, partSize, resumed, skipped, sent };
  }

  /**
   * Stop sending (in-flight requests are aborted), then discard the upload on
   * the server (mpu-abort) and forget its record. Resolves with the uploadId
   * aborted, or null if none had been created yet.
   */
  async cancel() {
    this.controller.abort();
    try {
      await this.running;
    } catch {
      // the AbortError (or whatever failure raced it) is expected here
    }
    if (!this.record) return null;
    await abortUpload(this.api, this.record);
    return this.record.uploadId;
  }
}

/** Discard an upload on the server, then forget its resume record. */
export async function abortUpload(api, record) {
  await api.request("DELETE", record.key, "mpu-abort", { uploadId: record.uploadId });
  removeRecord(record);
}
