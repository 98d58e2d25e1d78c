"""The service's start-up and memory tricks: the one place that says which are kept, why, and
what each was measured to buy. Kept only where ``python bench/tricks.py`` shows that it matters
(issue 16); the figures below are from its run recorded in bench/RESULTS.md ("Start-up and
memory tricks"), medians of 10 fresh starts per mode on the shared 2-core machine.

Kept: no Alembic on a start at the newest schema. Two pieces that pay only together, because
either one alone imports Alembic:

- ``extensions.DeferredMigrate``: Flask-Migrate, and so Alembic, is imported when a migration or
  a ``flask db`` command first needs it, not when the app is built.
- ``migrate_lock.script_heads`` / ``at_head``: the head revisions are read from the migration
  scripts' ``revision`` / ``down_revision`` literals with ``ast``, not with Alembic's
  ``ScriptDirectory``, so ``upgrade_database`` finds a database at head with one query.

  Building the app as ``scheduler-service run`` does on a SQLite database already at head
  (``create_app(start=False)``, imports included): 0.63 s of CPU and 71.5 MB peak RSS with both,
  0.80 s and 83.1 MB with neither (plain ``Migrate`` and ``ScriptDirectory``, or plain
  ``Migrate`` letting ``flask_migrate.upgrade`` find nothing to do): 0.17 s (21%) and 11.6 MB
  (14%) saved. Without the deferred import alone: 0.81 s, 83.2 MB; without the ``ast`` heads
  alone: 0.76 s, 82.5 MB.

Measured and dropped (no gain; do not bring them back without a benchmark that shows one):

- ``mallopt(M_ARENA_MAX, 1)`` at ``run``, meant to stop each request thread keeping its own peak
  after listing 10,000 jobs: RSS after 8 clients listed them 3 times each, 146 MB with one
  arena, 141 MB with glibc's per-thread arenas (``MALLOC_ARENA_MAX=64``). The call did take
  effect (11 thread arenas mapped without it, none with it); the RSS did not follow.
- ``gc.freeze()`` of the start-up objects, meant to shorten collector pauses in a burst of
  1,000 jobs due at once (memory store): p99 lateness 223 ms frozen, 172 ms not, p50 140 and
  138 ms (5 runs each, ranges 127-288 and 131-291 ms: noise, no gain).

This module holds no code: the kept tricks live where they act, and their docstrings point here.
"""
