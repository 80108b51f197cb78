// Resume records: which upload a file is going into, kept across page reloads.
//
// One localStorage entry per (file name, size, last-modified time, key). A
// file that changed gets another entry, so it is never resumed into an
// upload of its old bytes. The record holds only what the server cannot
// tell us: the uploadId and the part size. Which parts arrived is asked of
// the server (mpu-listparts) on resume, the way mpuflask/client/state.py does.

const PREFIX = "mpuflask.upload.v1:";

function entryName(file, key) {
  return PREFIX + JSON.stringify([file.name, file.size, file.lastModified, key]);
}

/** The record for this file and key, or null. */
export function loadRecord(file, key) {
  try {
    const record = JSON.parse(localStorage.getItem(entryName(file, key)));
    return record && typeof record.uploadId === "string" ? record : null;
  } catch {
    return null;
  }
}

/** Remember that `file` is going to `key` as upload `uploadId`, cut in `partSize` parts. */
export function saveRecord(file, key, uploadId, partSize) {
  const record = {
    name: file.name,
    size: file.size,
    lastModified: file.lastModified,
    key,
    uploadId,
    partSize,
    started: new Date().toISOString(),
  };
  localStorage.setItem(entryName(file, key), JSON.stringify(record));
  return record;
}

/** Forget the record (the upload completed, was cancelled, or is gone). */
export function removeRecord(record) {
  localStorage.removeItem(entryName({ name: record.name, size: record.size, lastModified: record.lastModified }, record.key));
}

/** Every record on this origin, oldest first. */
export function allRecords() {
  const records = [];
  for (let i = 0; i < localStorage.length; i++) {
    const name = localStorage.key(i);
    if (!name?.startsWith(PREFIX)) continue;
    try {
      const record = JSON.parse(localStorage.getItem(name));
      if (record && typeof record.uploadId === "string") records.push(record);
    } catch {
      // not ours to judge: leave it
    }
  }
  return records.sort((a, b) => a.started.localeCompare(b.started));
}

/** The records of this very file (any key): to offer resuming after a reload. */
export function recordsForFile(file) {
  return allRecords().filter(
    (r) => r.name === file.name && r.size === file.size && r.lastModified === file.lastModified,
  );
}
