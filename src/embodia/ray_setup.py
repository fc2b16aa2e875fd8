"""Ray setup shared by every layer that runs on Ray: a private local instance or a running cluster, once per process.

``init_ray(workers)`` starts a local instance bounded to ``workers`` CPUs, without the dashboard and with Ray's
token authentication on; ``init_ray(workers, "HOST:PORT")`` joins a running cluster (``ray start --head --port
PORT``) after :func:`check_ray_address` has seen the address accept connections (an unreachable address fails in
seconds with a clear message instead of Ray's long retry loop).
"""

from __future__ import annotations

import os
import socket

__all__ = ["CONNECT_TIMEOUT_S", "check_ray_address", "init_ray"]

CONNECT_TIMEOUT_S = 5.0
"""How long :func:`check_ray_address` waits for a TCP connection to the cluster's GCS."""


def check_ray_address(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Fail fast unless ``address`` (``HOST:PORT``) accepts TCP connections.

    Raises:
        ValueError: A malformed address, or nothing listening there within ``timeout_s``.
    """
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"--ray-address must be HOST:PORT (e.g. 127.0.0.1:6379), got {address!r}")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as err:
        raise ValueError(
            f"--ray-address {address}: no Ray cluster reachable ({err.strerror or err}); start one with "
            f"`ray start --head --port {port}` or leave --ray-address out to start a local instance"
        ) from None


def init_ray(workers: int, address: str | None = None) -> None:
    """Connect to Ray once per process: a local instance bounded to ``workers`` CPUs, or the cluster at ``address``.

    Raises:
        ValueError: ``workers`` < 1 or an unreachable ``address``.
    """
    import ray

    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"--workers must be an integer >= 1, got {workers!r}")
    if ray.is_initialized():
        cpus = ray.cluster_resources().get("CPU", 0)
        if cpus < workers:
            raise ValueError(f"--workers {workers} needs {workers} CPUs; the running Ray instance has {cpus:g}")
        return
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if address is not None:  # a cluster's own auth settings (RAY_AUTH_TOKEN / RAY_AUTH_MODE) apply
        check_ray_address(address)
        ray.init(address=address, log_to_driver=False)
    else:
        # Ray's token authentication stays on (Ray writes a token to ~/.ray/auth_token): the instance's servers
        # listen on every interface, so without it any host that reaches this one could join and run code.
        # "local": always a new instance, never a stale one named in /tmp/ray/ray_current_cluster
        ray.init(address="local", num_cpus=workers, include_dashboard=False, log_to_driver=False)
