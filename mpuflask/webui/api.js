// One API request, whatever the auth mode, retried when a second try can help.
//
// Every action is `<METHOD> /<key>?action=<action>[&uploadId=U][&partNumber=N]`
// (README.md). How the request proves who sends it depends on the mode:
//   "none"   - nothing (a server without auth, e.g. on loopback);
//   "token"  - the header `Authorization: Bearer <token>`;
//   "signed" - no header: for every request the page first asks the
//              integrator's signing endpoint for a signed URL
//              (POST {method, key, action, uploadId, partNumber} -> {"url": ...}).

/** How often and how patiently a request is tried (as mpuflask/client/retry.py). */
export const RETRY = { attempts: 6, baseDelayMs: 250, maxDelayMs: 20000 };

/** The server (or the signing endpoint) refused, or the network failed (status 0). */
export class ApiError extends Error {
  constructor(message, status, retryAfter = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

/** Raised when the user cancelled (an AbortSignal fired). */
export function abortError() {
  return new DOMException("Cancelled", "AbortError");
}

/**
 * Retry only what a second try can fix: a network error (status 0), 408,
 * 429 and 5xx. Any other 4xx is the server's final word (a bad request, a
 * wrong token, an upload that no longer exists) and is shown as it is.
 */
export function isRetryable(status) {
  return status === 0 || status === 408 || status === 429 || (status >= 500 && status <= 599);
}

/**
 * Milliseconds to wait after `failed` failures (1 = the first): exponential
 * with "full jitter", a random wait up to base * 2^(failed - 1), so parts that
 * failed together do not all come back at the same instant. A server's
 * Retry-After (seconds) is honoured, up to the cap.
 */
export function backoffDelay(failed, retryAfter = null) {
  if (retryAfter !== null && /^\s*\d+\s*$/.test(retryAfter)) {
    return Math.min(Number(retryAfter) * 1000, RETRY.maxDelayMs);
  }
  const bound = Math.min(RETRY.maxDelayMs, RETRY.baseDelayMs * 2 ** (failed - 1));
  return bound * Math.random();
}

/** Wait `ms`, or stop early with an AbortError if `signal` fires. */
export function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError());
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(abortError());
    }, { once: true });
  });
}

/**
 * Why a key cannot be used from a browser, or null. A key is 1 to 1024 bytes
 * of UTF-8; "." and ".." alone are keys the server accepts, but a browser
 * resolves them away in any URL path, so the page cannot address them.
 */
export function keyProblem(key, maxKeyBytes = 1024) {
  if (key.length === 0) return "the key is empty";
  const bytes = new TextEncoder().encode(key).length;
  if (bytes > maxKeyBytes) return `the key is ${bytes} bytes of UTF-8; at most ${maxKeyBytes} are allowed`;
  if (key === "." || key === "..") return `the key "${key}" cannot be used from a browser`;
  return null;
}

/**
 * The URL path of a key. The server percent-decodes the path, so every
 * segment is encoded; the slashes stay readable, unless a segment is "." or
 * "..", which a browser would resolve: then the whole key is one segment
 * (slashes as %2F, which the server decodes back to "/").
 */
export function keyPath(key) {
  const segments = key.split("/");
  if (segments.some((s) => s === "." || s === "..")) return encodeURIComponent(key);
  return segments.map(encodeURIComponent).join("/");
}

/** The server's answer to one request. */
class Answer {
  constructor(xhr) {
    this.status = xhr.status;
    this.text = xhr.responseText;
    this.xhr = xhr;
  }

  header(name) {
    return this.xhr.getResponseHeader(name);
  }

  json() {
    return JSON.parse(this.text);
  }
}

/**
 * Send one request with XMLHttpRequest (not fetch: only XHR reports upload
 * progress). Resolves with the Answer whatever the status; rejects with
 * ApiError status 0 on a network error, or an AbortError when cancelled.
 */
function send(method, url, headers, body, onProgress, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError());
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
    if (onProgress) xhr.upload.onprogress = (event) => onProgress(event.loaded);
    const stop = () => xhr.abort();
    signal?.addEventListener("abort", stop, { once: true });
    const done = () => signal?.removeEventListener("abort", stop);
    xhr.onload = () => { done(); resolve(new Answer(xhr)); };
    xhr.onerror = () => { done(); reject(new ApiError(`network error on ${method} ${new URL(url).pathname}`, 0)); };
    xhr.onabort = () => { done(); reject(abortError()); };
    xhr.send(body ?? null);
  });
}

/** The message to show for a refusal: the server's own text when it sent one. */
function describe(answer) {
  const text = answer.text.trim();
  return text || `HTTP ${answer.status} ${answer.xhr.statusText}`.trim();
}

export class Api {
  /**
   * auth: {mode: "none" | "token" | "signed", token, signer}; `origin` is the
   * server's (the page is served by it, so by default its own origin).
   */
  constructor(auth, origin = location.origin) {
    this.auth = auth;
    this.origin = origin;
  }

  /** The URL (and headers) for one request, per the auth mode. */
  async target(method, key, action, { uploadId = null, partNumber = null, signal } = {}) {
    if (this.auth.mode === "signed") {
      return { url: await this.#signedUrl(method, key, action, uploadId, partNumber, signal), headers: {} };
    }
    const query = new URLSearchParams({ action });
    if (uploadId !== null) query.set("uploadId", uploadId);
    if (partNumber !== null) query.set("partNumber", String(partNumber));
    const url = `${this.origin}/${keyPath(key)}?${query}`;
    const headers = this.auth.mode === "token" ? { Authorization: `Bearer ${this.auth.token}` } : {};
    return { url, headers };
  }

  /**
   * Ask the signing endpoint for a URL for exactly this request. Its session
   * cookie (if it has one) goes along: `credentials: "include"`.
   */
  async #signedUrl(method, key, action, uploadId, partNumber, signal) {
    let response;
    try {
      response = await fetch(this.auth.signer, {
        method: "POST",
        credentials: "include",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ method, key, action, uploadId, partNumber }),
        signal,
      });
    } catch (error) {
      if (signal?.aborted) throw abortError();
      throw new ApiError(`the signing endpoint could not be reached (${error.message})`, 0);
    }
    const text = await response.text();
    if (!response.ok) {
      // Its reason: {"error": "..."} or plain text.
      let reason = text.trim() || `HTTP ${response.status}`;
      try {
        const said = JSON.parse(text).error;
        if (typeof said === "string") reason = said;
      } catch {
        // not JSON: keep the text
      }
      throw new ApiError(
        `the signing endpoint refused: ${reason}`,
        response.status,
        response.headers.get("Retry-After"),
      );
    }
    let url;
    try {
      url = JSON.parse(text).url;
    } catch {
      url = undefined;
    }
    if (typeof url !== "string") throw new ApiError('the signing endpoint did not answer {"url": ...}', 502);
    return new URL(url, location.href).href;
  }

  /**
   * One API request, tried up to RETRY.attempts times. Resolves with the
   * Answer of a success (status < 400); rejects with the last ApiError, or an
   * AbortError when `signal` fires. `onRetry({attempt, delayMs, error})` is
   * told before each wait; `onProgress(bytesSent)` during an upload.
   */
  async request(method, key, action, options = {}) {
    const { uploadId = null, partNumber = null, body = null, headers = {}, onProgress, onRetry, signal } = options;
    for (let attempt = 1; ; attempt++) {
      let failure;
      try {
        const target = await this.target(method, key, action, { uploadId, partNumber, signal });
        onProgress?.(0); // a retry starts the part again
        const answer = await send(method, target.url, { ...target.headers, ...headers }, body, onProgress, signal);
        if (answer.status < 400) return answer;
        failure = new ApiError(describe(answer), answer.status, answer.header("Retry-After"));
      } catch (error) {
        if (signal?.aborted || error.name === "AbortError") throw abortError();
        if (!(error instanceof ApiError)) throw error;
        failure = error;
      }
      if (!isRetryable(failure.status) || attempt >= RETRY.attempts) throw failure;
      const delayMs = backoffDelay(attempt, failure.retryAfter);
      onRetry?.({ attempt, delayMs, error: failure });
      await sleep(delayMs, signal);
    }
  }
}
