"""Power-loss testing: a disk that forgets what was never fsynced, and a harness.

* ``lazyfs``: the model of a careful disk (the rules, and the cut), with
  ``lazynodes`` (node ids, paths, files kept in limbo), ``names`` (durable
  and pending directory entries) and ``rebuild`` (undo records, and the
  durable tree built at a cut);
* ``fusefs``: that model mounted with FUSE, a daemon per mount, cut on command
  (``fusedaemon``: the daemon, serving the disk and its control socket);
* ``harness``: gunicorn on the mount, clients, power cuts, and the crash
  harness's checks (``tests/crash/``) after every restart.
"""
