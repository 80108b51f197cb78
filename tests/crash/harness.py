"""The crash harness's coordinator: progress, kills, restarts, checks.

:class:`CrashHarness` puts the parts together (the model, the findings, the
process driver, the checker, the clients) and runs the kills: it waits for a
seeded number of acknowledged requests, then SIGKILLs a worker or the master
with all its workers. After a master kill it parks the clients, stops what is
left, calls :meth:`CrashHarness.while_down` (the power-loss harness cuts the
power there), restarts gunicorn on the same data directory and port, and runs
the checker. Subclasses change the crash (:meth:`~CrashHarness.while_down`)
and the checks (:attr:`~CrashHarness.checker_class`).
"""

from __future__ import annotations

import random
import threading
import time
import traceback

from tests.servers import free_port

from .api import Api
from .checker import Checker
from .clients import Client
from .driver import Driver
from .driver import HarnessError
from .model import Model
from .report import Findings
from .report import HarnessConfig
from .report import Report
from .workload import Workload


class CrashHarness:
    """Runs one :class:`HarnessConfig`; :meth:`run` returns the :class:`Report`."""

    #: The checks run after each restart (the power-loss harness adds its own).
    checker_class: type[Checker] = Checker

    def __init__(self, config: HarnessConfig) -> None:
        self.cfg = config
        self.findings = Findings()
        self.model = Model(
            config.seed, [f"crash/key-{index}" for index in range(config.keys)]
        )
        port = free_port()
        self.driver = Driver(config, port, self.findings)
        self.api = Api(port, config.request_timeout, self.findings)
        self.checker = self.checker_class(
            config, self.model, self.findings, self.api, self.driver
        )
        self.workload = Workload(
            config, self.model, self.findings, self.api, self.checker
        )

    def run(self) -> Report:
        started = time.monotonic()
        self.cfg.data_dir.mkdir(parents=True, exist_ok=True)
        rng = random.Random(f"mpuflask-crash:{self.cfg.seed}:kills")
        gate = self.workload.gate
        clients = [
            threading.Thread(
                target=Client(self.workload, index).run, name=f"crash-client-{index}"
            )
            for index in range(self.cfg.clients)
        ]
        finished = False
        try:
            self.driver.start()
            for thread in clients:
                thread.start()
            for index in range(self.cfg.kills):
                last = index == self.cfg.kills - 1
                if time.monotonic() - started > self.cfg.duration:
                    last = True  # out of time: end with a master kill and checks
                master = last or (index + 1) % self.cfg.master_every == 0
                alive = self.wait_progress(rng.randint(*self.cfg.progress))
                if alive and self.cfg.jitter > 0:
                    time.sleep(rng.uniform(0, self.cfg.jitter))  # workload timing
                if alive and not master:
                    self.driver.kill_worker(rng)
                    continue
                if alive:
                    self.driver.kill_master()
                self.after_master_crash()
                if last:
                    break
                gate.reopen()
            finished = True
        except HarnessError as error:
            self.findings.violation("harness errors", str(error))
        except Exception:
            self.findings.violation("harness errors", traceback.format_exc())
        finally:
            gate.stop()
            for thread in clients:
                if thread.ident is not None:
                    thread.join(timeout=120)
            self.workload.pool.shutdown(wait=True)
            self.driver.stop()
        if finished:
            self.checker.final_sweep_check()
        self.driver.collect_log()
        return self.findings.report(self.cfg, time.monotonic() - started)

    def wait_progress(self, count: int) -> bool:
        """Wait for ``count`` more acknowledged requests; False if gunicorn died."""
        deadline = time.monotonic() + self.cfg.stall_timeout
        progress = self.findings.progress
        with progress:
            goal = self.findings.acks + count
            while self.findings.acks < goal:
                if not self.driver.running():
                    self.driver.master_died()
                    return False
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.findings.count("stalls")
                    break
                progress.wait(min(0.5, remaining))
        return True

    def after_master_crash(self) -> None:
        """Park the clients, look at the leftovers, restart, check everything."""
        gate = self.workload.gate
        gate.close()
        if not gate.wait_parked(timeout=3 * self.cfg.request_timeout):
            raise HarnessError("clients did not park after a master kill")
        self.driver.stop()
        self.while_down()
        self.driver.start()
        self.findings.count("restarts")
        self.checker.check_after_restart()

    def while_down(self) -> None:
        """Between the crash and the restart: no process runs on the data dir.

        (The power-loss harness cuts the power here.)
        """
        self.driver.age_debris()


def run_harness(config: HarnessConfig) -> Report:
    """Run the harness once; the report says whether every invariant held."""
    return CrashHarness(config).run()
