"""The crash harness (issue 6, item 1): real gunicorn, SIGKILLs, checked invariants.

Used by ``tests/test_crash.py`` (a short run inside the suite), by
``bench/crash_harness.py`` (the long run: hundreds of kills, figures printed)
and, with power cuts for crashes, by ``tests/powerloss/harness.py``.

Where each part lives
---------------------
* :mod:`.model`: the content clients send, the versions, writes, reads and
  uploads they recorded, and the verdict which states a key may be in;
* :mod:`.checker`: every GET's answer, and everything after each restart;
* :mod:`.driver`: gunicorn started, killed, restarted; its log; the leftovers;
* :mod:`.clients`: the client threads, and the steps they choose;
* :mod:`.workload`: the requests they make, each recorded in the model;
* :mod:`.api`: one request on its own connection, and how it ended;
* :mod:`.report`: the run's configuration, findings and report;
* :mod:`.harness`: the coordinator, :func:`~.harness.run_harness`.

What it does
------------
It runs gunicorn (our ``gunicorn.conf.py``) with several workers on one data
directory, durability on, parts as small as 64 KiB, and drives ``clients``
threads against it. Each client loops over: start an upload of one of a few
shared keys (``mpu-create``), send its 2-4 parts in parallel, sometimes send a
part again with other bytes, then complete it (a new version of the key: an
overwrite) or abort it; delete a key; read a key whole or a range of it. Every
byte a client sends is generated from ``(seed, salt)``, so the harness knows the
exact content, MD5s and etag of every version it ever asked for.

A coordinator waits for progress (a random number of acknowledged requests,
seeded), then SIGKILLs one worker (gunicorn respawns it) or the master and all
its workers, whatever they are doing. After a master kill it waits for the
clients to park, ages the crash's leftovers in ``tmp/`` past the temp files'
grace period (as if the restart came a minute later), restarts gunicorn on the
same data directory and port, and checks:

* leftovers: ``tmp/``, ``staging/`` and ``trash/`` are emptied by the start-up
  sweep, and ``uploads/`` holds exactly the uploads the clients still consider
  open (plus uploads whose mpu-create was cut by a kill, which the harness
  recognises by key, counts, and aborts); after the final sweep, the owner
  index (``owners/``, behind ``MPUFLASK_MAX_OPEN_UPLOADS``) has exactly one
  entry per open upload;
* no acknowledged part is lost: ``mpu-listparts`` of every open upload lists
  each acknowledged part with its etag and size (or, if a later attempt at
  that part number was cut by a kill, that attempt's etag);
* no acknowledged write is lost: a GET of every key answers a state the key
  may be in (see below), with the very bytes of that version;
* no read was stale: every GET made during the run (they are recorded) saw a
  state the key may have been in during that GET.

On every GET answered 200/206, at any time, it checks that the response is one
whole version: the etag names a version of this key, Content-Type is that
version's (it is set at mpu-create and unique per upload), Content-Length is
honoured, and the bytes (or the range, with its Content-Range) are exactly that
version's. A read cut short by a kill (fewer bytes than Content-Length) is a
failed read, never a torn one; a complete 200/206 with other bytes is torn.

Which states a key may be in
----------------------------
Each write to a key (a complete publishes one version, a delete publishes
"absent", the initial state is an absent written at -inf) is recorded with the
instants its request started and ended, and how it ended: acknowledged, refused
(it did nothing), or unknown (cut by a kill: a kill ends the process before its
socket closes, so whatever an unknown write did, it did before its client saw
the failure). Unknown completes are resolved at the next restart with
mpu-listparts: the upload is still open (the complete was rolled back, it never
happened) or gone (it was published). A read that started at ``s`` and ended at
``e`` may see the state written by ``w`` if ``w`` may have happened, started
before ``e``, and no write that surely happened started after ``w`` ended and
ended before ``s``. That is necessary for linearizability, so any violation is
a real bug; at a restart (nothing in flight) it says: the GET shows the last
acknowledged write, or a cut write that came after it.

Everything is bounded: requests time out, waits have deadlines, the kills are
counted and the run has a time budget; traffic goes only to 127.0.0.1.
"""
