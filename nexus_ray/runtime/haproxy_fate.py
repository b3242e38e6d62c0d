"""HAProxy that dies with the Serve actor that started it.

Serve starts HAProxy as a plain child of its HAProxyManager actor. When the server is
killed (SIGKILL, a crash), HAProxy is re-parented and goes on holding the HTTP port: the
next ``nexus serve`` on that port died at start ("HAProxy crashed during startup ...
Address already in use"), and the port stayed taken until someone found the stray
process. On Linux an embedded server points Serve at a small wrapper that asks the kernel
to SIGKILL HAProxy when its parent dies (``PR_SET_PDEATHSIG``), then becomes the real
binary (``execv``: same process, same arguments).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

logger = logging.getLogger("nexus_ray.runtime")
BINARY_VARIABLE = "RAY_SERVE_HAPROXY_BINARY_PATH"
SHEBANG_MAX = 120  # older kernels cut a "#!" line at 127 bytes
_WRAPPER = """#!{python} -I
# Written by nexus_ray (runtime/haproxy_fate.py): HAProxy dies with its parent.
import ctypes, os, signal, sys

REAL = {real!r}
if ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL) != 0:  # 1 = PR_SET_PDEATHSIG
    sys.exit("nexus_ray: prctl(PR_SET_PDEATHSIG) failed, errno %d" % ctypes.get_errno())
if os.getppid() == 1:  # the parent died before prctl: start no orphan
    sys.exit("nexus_ray: HAProxy's parent is gone; not starting it")
os.execv(REAL, [REAL, *sys.argv[1:]])
"""


def write_wrapper(directory: Path, real: str) -> Path:
    """An executable wrapper of the HAProxy binary ``real`` in ``directory``."""
    wrapper = directory / "nexus-haproxy"
    wrapper.write_text(_WRAPPER.format(python=sys.executable, real=real))
    wrapper.chmod(0o755)
    return wrapper


def bind_haproxy_to_its_parent(directory: Path) -> Path | None:
    """Make Serve start HAProxy through the wrapper (written in ``directory``, which must
    outlive the server): call before Ray starts. The wrapper, or None where it does not
    apply: not Linux, or ``RAY_SERVE_HAPROXY_BINARY_PATH`` set by the user (left alone;
    the server sets it only while Ray starts, see ray_cluster.for_ray_only)."""
    if sys.platform != "linux" or BINARY_VARIABLE in os.environ:
        return None
    if " " in sys.executable or len(sys.executable) > SHEBANG_MAX:  # a "#!" line could not start it
        logger.warning(
            "HAProxy runs unwrapped (a crash can leave it on the port): %s cannot be a #! line", sys.executable
        )
        return None
    from ray.serve._private.haproxy import get_haproxy_binary

    try:
        real = get_haproxy_binary()
    except FileNotFoundError:
        return None  # Serve reports the missing binary itself when it starts
    wrapper = write_wrapper(directory, real)
    os.environ[BINARY_VARIABLE] = str(wrapper)
    logger.debug("HAProxy %s runs through %s (it dies with its parent)", real, wrapper)
    return wrapper
