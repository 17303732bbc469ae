from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.contact_center.harness import Center


@pytest.fixture
def center() -> Iterator[Center]:
    c = Center()
    yield c
    c.close()
