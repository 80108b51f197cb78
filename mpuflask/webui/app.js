// The page: wires the form's controls to the upload flow (upload.js) and
// draws what it reports. Nothing here talks to the server directly except
// through api.js; read upload.js for the flow itself.

import { Api, ApiError, keyProblem } from "/?asset=api.js";
import { allRecords, loadRecord, recordsForFile, removeRecord } from "/?asset=resume.js";
import { Upload, abortUpload } from "/?asset=upload.js";

const $ = (id) => document.getElementById(id);

// The server's part limits (its MPUFLASK_MIN_PART_SIZE and so on): the part
// plan must obey them, so the page asks before anything else.
const limits = await (await fetch("/?asset=config.json")).json();

// -- settings: kept across reloads ---------------------------------------------
// The mode, endpoint and concurrency in localStorage; the token only in
// sessionStorage (this tab, until it is closed), not on disk for good.
const SETTINGS = "mpuflask.settings";
const TOKEN = "mpuflask.token";

function loadSettings() {
  let saved = {};
  try {
    saved = JSON.parse(localStorage.getItem(SETTINGS)) ?? {};
  } catch {
    saved = {};
  }
  // An integrator can link to the page with its endpoint: /#signer=<url>
  const fromLink = new URLSearchParams(location.hash.slice(1)).get("signer");
  if (fromLink) Object.assign(saved, { mode: "signed", signer: fromLink });
  const mode = ["none", "token", "signed"].includes(saved.mode) ? saved.mode : "none";
  $(`auth-${mode}`).checked = true;
  $("signer").value = saved.signer ?? "";
  if (saved.concurrency) $("concurrency").value = saved.concurrency;
  $("token").value = sessionStorage.getItem(TOKEN) ?? "";
  showAuthFields();
}

function saveSettings() {
  localStorage.setItem(
    SETTINGS,
    JSON.stringify({ mode: authMode(), signer: $("signer").value.trim(), concurrency: $("concurrency").value }),
  );
  sessionStorage.setItem(TOKEN, $("token").value);
}

function authMode() {
  return document.querySelector('input[name="auth"]:checked').value;
}

function showAuthFields() {
  $("token-field").hidden = authMode() !== "token";
  $("signer-field").hidden = authMode() !== "signed";
}

/** An Api for the credentials as they are now, or throws why they are incomplete. */
function makeApi() {
  const mode = authMode();
  const token = $("token").value.trim();
  const signer = $("signer").value.trim();
  if (mode === "token" && !token) throw new Error("Type the token first (Credentials).");
  if (mode === "signed" && !signer) throw new Error("Type the signing endpoint's URL first (Credentials).");
  return new Api({ mode, token, signer });
}

// -- announcing ----------------------------------------------------------------
// Steps go to the polite status region, errors to the alert region: screen
// readers announce both. Progress is drawn silently (the <progress> element
// and the figures under it); the status region gets a line at every quarter.

function announce(text) {
  $("status").textContent = text;
}

function showError(text) {
  $("error").textContent = text;
}

function formatBytes(bytes) {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}

function formatDuration(seconds) {
  if (seconds < 1) return "under a second";
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

// Progress arrives many times a second; draw it at most every 150 ms.
let pending = null;
let drawTimer = null;

function drawProgress(state) {
  pending = state;
  if (drawTimer === null) {
    drawTimer = setTimeout(() => {
      drawTimer = null;
      drawNow(pending);
    }, 150);
  }
}

function drawNow(state) {
  const bar = $("progress");
  bar.max = Math.max(1, state.total);
  bar.value = state.total === 0 ? (state.partsDone === state.partCount ? 1 : 0) : state.done;
  const percent = state.total ? Math.floor((100 * state.done) / state.total) : 0;
  let text = `${formatBytes(state.done)} of ${formatBytes(state.total)} (${percent}%)`;
  if (state.rate) text += `, ${formatBytes(state.rate)}/s`;
  if (state.eta !== null && state.done < state.total) text += `, about ${formatDuration(state.eta)} left`;
  $("figures").textContent = text;
  $("parts").textContent = `${state.partsDone} of ${state.partCount} parts done`;
}

function flushProgress() {
  if (drawTimer !== null) {
    clearTimeout(drawTimer);
    drawTimer = null;
    drawNow(pending);
  }
}

// -- choosing a file -----------------------------------------------------------
let file = null;

function chooseFile(chosen) {
  file = chosen;
  showError("");
  $("result").hidden = true;
  if (!file) return;
  // A record for this very file (name, size, modification time) means an
  // upload of it was interrupted: suggest its key, so Upload resumes it.
  const records = recordsForFile(file);
  if (records.length > 0) {
    const record = records[records.length - 1];
    $("key").value = record.key;
    announce(`${file.name} was being uploaded to key ${record.key}: Resume upload continues it.`);
  } else {
    $("key").value = file.name;
    announce(`${file.name} chosen, ${formatBytes(file.size)}.`);
  }
  updateStartLabel();
}

function updateStartLabel() {
  $("start").textContent = file && loadRecord(file, $("key").value) ? "Resume upload" : "Upload";
}

$("file").addEventListener("change", () => chooseFile($("file").files[0] ?? null));
$("key").addEventListener("input", updateStartLabel);

// Drag and drop: the drop zone takes a dropped file as if it were chosen.
const dropzone = $("dropzone");
for (const type of ["dragenter", "dragover"]) {
  dropzone.addEventListener(type, (event) => {
    event.preventDefault();
    dropzone.classList.add("over");
  });
}
dropzone.addEventListener("dragleave", () => dropzone.classList.remove("over"));
dropzone.addEventListener("drop", (event) => {
  event.preventDefault();
  dropzone.classList.remove("over");
  const dropped = event.dataTransfer.files;
  if (dropped.length === 0) return;
  if (upload) return announce("An upload is running: cancel it or wait before choosing another file.");
  $("file").files = dropped; // the input shows the dropped file too
  chooseFile(dropped[0]);
});

// -- uploading -----------------------------------------------------------------
let upload = null;

function setBusy(busy) {
  if (busy) setState("uploading");
  for (const id of ["file", "key", "concurrency", "start", "token", "signer", "auth-none", "auth-token", "auth-signed"]) {
    $(id).disabled = busy;
  }
  $("cancel").disabled = !busy;
  // Keyboard users keep a place: Cancel while it runs, Upload afterwards.
  (busy ? $("cancel") : $("start")).focus();
}

function setState(state) {
  $("upload-form").dataset.state = state;
}

$("upload-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (upload) return;
  showError("");
  $("result").hidden = true;
  if (!file) return showError("Choose a file first.");
  const key = $("key").value;
  const problem = keyProblem(key, limits.maxKeyBytes);
  if (problem) return showError(`This key cannot be used: ${problem}.`);
  let api;
  try {
    api = makeApi();
  } catch (error) {
    return showError(error.message);
  }
  saveSettings();
  upload = new Upload({
    api,
    file,
    key,
    limits,
    concurrency: Number($("concurrency").value),
    events: {
      status: announce,
      progress: drawProgress,
      started: () => renderUnfinished(),
    },
  });
  setBusy(true);
  try {
    const result = await upload.run();
    flushProgress();
    setState("done");
    showResult(result);
    announce(
      `Upload complete: ${result.key}, ${formatBytes(result.size)} in ${result.partCount} parts` +
        (result.resumed ? ` (${result.skipped} were already on the server, ${result.sent} sent now)` : "") +
        `. Etag ${result.etag}, as computed here.`,
    );
  } catch (error) {
    flushProgress();
    if (error.name === "AbortError") {
      setState("cancelled"); // the cancel button's handler says the rest
    } else {
      setState("failed");
      const again = error instanceof ApiError && loadRecord(file, key) ? " Upload again to resume it." : "";
      showError(`Upload failed: ${error.message}.${again}`);
      announce("Upload failed.");
    }
  } finally {
    upload = null;
    setBusy(false);
    updateStartLabel();
    renderUnfinished();
  }
});

$("cancel").addEventListener("click", async () => {
  if (!upload) return;
  const running = upload;
  $("cancel").disabled = true;
  announce("Cancelling…");
  try {
    const uploadId = await running.cancel();
    announce(
      uploadId
        ? `Cancelled: upload ${uploadId} is aborted on the server and its parts discarded.`
        : "Cancelled before the upload was created.",
    );
  } catch (error) {
    showError(`Cancelled here, but the server did not abort the upload: ${error.message}`);
  }
  renderUnfinished();
});

function showResult(result) {
  $("result-key").textContent = result.key;
  $("result-size").textContent = `${formatBytes(result.size)} (${result.size} bytes)`;
  $("result-parts").textContent = `${result.partCount} of ${formatBytes(result.partSize)}` +
    (result.resumed ? `; ${result.skipped} already on the server, ${result.sent} sent` : "");
  $("result-etag").textContent = `"${result.etag}"`;
  $("result").hidden = false;
  $("download-key").value = result.key;
}

// -- unfinished uploads ----------------------------------------------------------
// Every record in localStorage, with a button to discard it (mpu-abort).

function renderUnfinished() {
  const list = $("unfinished");
  list.replaceChildren();
  const records = allRecords().filter((r) => !(upload?.record && r.uploadId === upload.record.uploadId));
  $("unfinished-section").hidden = records.length === 0;
  for (const record of records) {
    const item = document.createElement("li");
    const text = document.createElement("span");
    text.textContent = `${record.name} (${formatBytes(record.size)}) to key ${record.key}, started ${new Date(record.started).toLocaleString()} `;
    const discard = document.createElement("button");
    discard.type = "button";
    discard.textContent = "Discard";
    discard.setAttribute("aria-label", `Discard the unfinished upload of ${record.name} to ${record.key}`);
    discard.addEventListener("click", async () => {
      discard.disabled = true;
      try {
        await abortUpload(makeApi(), record);
        announce(`Discarded the upload of ${record.name} to ${record.key}.`);
      } catch (error) {
        discard.disabled = false;
        showError(`Could not discard it: ${error.message}`);
        return;
      }
      renderUnfinished();
      updateStartLabel();
      $("start").focus();
    });
    item.append(text, discard);
    list.append(item);
  }
}

// -- downloading -----------------------------------------------------------------
// GET /<key>?action=get. With a token the request needs a header, which a
// plain link cannot carry: the page fetches the object and saves it from
// memory. Otherwise it checks the object is there (HEAD) and lets the
// browser download the URL itself (streamed to disk, any size).

function saveAs(href, key) {
  const link = $("download-link");
  link.href = href;
  link.download = key.split("/").pop() || "download";
  link.textContent = `Download ${key} again`;
  $("download-again").hidden = false;
  link.click();
}

$("download-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const key = $("download-key").value;
  const status = $("download-status");
  showError("");
  const problem = keyProblem(key, limits.maxKeyBytes);
  if (problem) return showError(`This key cannot be used: ${problem}.`);
  $("download").disabled = true;
  status.textContent = `Fetching ${key}…`;
  try {
    const api = makeApi();
    if (api.auth.mode === "token") {
      const { url, headers } = await api.target("GET", key, "get");
      const response = await fetch(url, { headers });
      if (!response.ok) throw new ApiError((await response.text()).trim() || `HTTP ${response.status}`, response.status);
      const href = URL.createObjectURL(await response.blob());
      saveAs(href, key);
      setTimeout(() => URL.revokeObjectURL(href), 60_000);
    } else {
      try {
        await api.request("HEAD", key, "get");
      } catch (error) {
        // A HEAD answer has no body: give the GET's text for a missing object.
        if (error.status === 404) throw new ApiError("Object Not Found", 404);
        throw error;
      }
      const { url } = await api.target("GET", key, "get");
      saveAs(url, key);
    }
    status.textContent = `Downloading ${key}.`;
  } catch (error) {
    status.textContent = "";
    showError(`Download failed: ${error.message}`);
  } finally {
    $("download").disabled = false;
  }
});

// -- start -----------------------------------------------------------------------
for (const radio of document.querySelectorAll('input[name="auth"]')) {
  radio.addEventListener("change", () => {
    showAuthFields();
    saveSettings();
  });
}
for (const id of ["token", "signer", "concurrency"]) $(id).addEventListener("change", saveSettings);
// Enter in the token or endpoint field must not reload the page.
$("auth-form").addEventListener("submit", (event) => {
  event.preventDefault();
  saveSettings();
});
loadSettings();
renderUnfinished();
setState("idle");
// The page is ready (tests and scripts can wait for this).
document.documentElement.dataset.ready = "true";
