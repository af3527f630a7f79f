"""A local Ray cluster shared by the tests of this folder (Ray's own advice for test suites:
one cluster per session, CPUs pinned, always shut down)."""

import pytest

ray = pytest.importorskip("ray", reason="the ray tox env installs Ray; the core env does not")


@pytest.fixture(scope="session")
def ray_cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()
