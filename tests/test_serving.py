"""``mpuflask serve`` and the gunicorn settings inside the package.

The served end to end (wheel, fresh venv, a 45 s part) is in
tests/e2e/test_installed.py; here, what must hold for it without a server.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from .servers import ROOT


def _python(code: str, cwd: Path = ROOT) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_importing_the_package_imports_neither_flask_nor_prometheus() -> None:
    # gunicorn's master imports the settings module: prometheus_client must not
    # be imported before the settings set PROMETHEUS_MULTIPROC_DIR.
    loaded = _python(
        "import sys, mpuflask, mpuflask.cli, mpuflask.serving\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('flask', 'prometheus_client', 'werkzeug')))"
    )
    assert loaded.strip() == "[]"


def test_the_settings_put_prometheus_in_multiprocess_mode() -> None:
    value_class = _python(
        "import mpuflask.serving.gunicorn_settings as settings\n"
        "import mpuflask.serving.startup_checks as checks\n"
        "from prometheus_client import values\n"
        "print(values.ValueClass.__name__)\n"
        "settings.on_exit(None)"
    )
    assert value_class.strip() == "MmapedValue"


def test_the_clone_gunicorn_conf_is_the_package_settings(tmp_path: Path) -> None:
    names = (
        "wsgi_app bind workers worker_class threads timeout graceful_timeout "
        "keepalive limit_request_line control_socket_disable accesslog errorlog "
        "loglevel logconfig_dict on_starting when_ready post_worker_init "
        "child_exit on_exit"
    ).split()
    same = _python(
        "import runpy\n"
        "import mpuflask.serving.gunicorn_settings as package\n"
        "clone = runpy.run_path('gunicorn.conf.py')\n"
        f"names = {names!r}\n"
        "print(all(clone[n] is getattr(package, n) for n in names))\n"
        "package.on_exit(None)"
    )
    assert same.strip() == "True"


def test_the_clone_wsgi_is_the_package_app(tmp_path: Path) -> None:
    same = _python(
        "import os\n"
        f"os.environ['MPUFLASK_DATA_DIR'] = {str(tmp_path / 'data')!r}\n"
        "import wsgi, mpuflask.wsgi\n"
        "print(wsgi.app is mpuflask.wsgi.app)"
    )
    assert same.strip() == "True"


def _mpuflask(*args: str) -> subprocess.CompletedProcess[str]:
    command = shutil.which("mpuflask", path=str(Path(sys.executable).parent))
    assert command is not None, "pip install -e . installs the mpuflask command"
    return subprocess.run(
        [command, *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_serve_refuses_a_config_file_of_its_own() -> None:
    done = _mpuflask("serve", "-c", "mine.py")
    assert done.returncode == 2
    assert "mpuflask serve: error: -c/--config would replace" in done.stderr


def test_serve_help_is_gunicorns_with_our_usage() -> None:
    done = _mpuflask("serve", "--help")
    assert done.returncode == 0
    assert done.stdout.startswith("usage: mpuflask serve [gunicorn options]")
    assert "-b ADDRESS, --bind ADDRESS" in done.stdout


def test_a_worker_freezes_what_it_loaded_for_the_garbage_collector() -> None:
    """After its app is loaded a worker's objects live as long as it does:
    full collections, which a complete of 10,000 parts triggers, skip them."""
    frozen = _python(
        "import gc, types\n"
        "import mpuflask.serving.gunicorn_settings as settings\n"
        "import mpuflask.serving.startup_checks as checks\n"
        "before = gc.get_freeze_count()\n"
        "settings.post_worker_init(types.SimpleNamespace(wsgi=None))\n"
        "print(before, gc.get_freeze_count() > 1000)\n"
        "settings.on_exit(None)"
    )
    assert frozen.split() == ["0", "True"]


def test_the_settings_check_runs_as_the_workers_user_and_reads_binds_as_gunicorn(
    tmp_path: Path,
) -> None:
    """A review of the start-up checks: the check opens the store, so as root
    with ``--user`` it made the data directory root's and the workers could
    not write it; ``tcp://127.0.0.1`` (port 8000 to gunicorn) was refused;
    ``GUNICORN_TIMEOUT=0`` (gunicorn: no timeout) was refused."""
    out = _python(
        "import os, types\n"
        "os.environ['GUNICORN_TIMEOUT'] = '0'\n"
        "import gunicorn.util\n"
        "import mpuflask.serving.gunicorn_settings as settings\n"
        "import mpuflask.serving.startup_checks as checks\n"
        f"os.environ['MPUFLASK_DATA_DIR'] = {str(tmp_path / 'data')!r}\n"
        "def owner(uid, gid, initgroups=False):\n"
        "    raise RuntimeError(f'as {uid}:{gid}')\n"
        "gunicorn.util.set_owner_process = owner\n"
        "me = types.SimpleNamespace(uid=os.geteuid(), gid=os.getegid(), initgroups=False)\n"
        "other = types.SimpleNamespace(uid=4321, gid=8765, initgroups=False)\n"
        "print(checks.settings_verdict(me))\n"
        "print(checks.settings_verdict(other))\n"
        "for bind in ('tcp://127.0.0.1', '[::1]:8000', 'unix:/run/a.sock',"
        " 'tcp://127.0.0.1:99999', '127.0.0.1:8x'):\n"
        "    print(checks.bind_problem(bind))\n"
        "print(settings.timeout)\n"
        "settings.on_exit(None)",
    )
    assert out.splitlines() == [
        "open",
        "error checking the settings failed: RuntimeError('as 4321:8765')",
        "None",
        "None",
        "None",
        "cannot listen on 'tcp://127.0.0.1:99999': the port must be 0 to 65535",
        "cannot listen on '127.0.0.1:8x': the port must be 0 to 65535",
        "0",
    ]
