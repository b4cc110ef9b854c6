"""`tailorbot rasa consume --until-end`: when a member has read its partitions to their end.
(Against a real broker, with an empty partition: tests/integration/test_rasa_consume*.py.)"""

from __future__ import annotations

import pytest
from confluent_kafka import TopicPartition

from tailorbot.integrations.rasa_consumer import KafkaConfigError, _check_eager, _PartitionEnds


def partitions(*numbers: int) -> list[TopicPartition]:
    return [TopicPartition("rasa_core_events", n) for n in numbers]


def test_not_read_before_the_group_assigns_partitions() -> None:
    assert not _PartitionEnds().all_read()


def test_every_assigned_partition_must_reach_its_end() -> None:
    ends = _PartitionEnds()
    ends.assigned(None, partitions(0, 1))
    ends.reached(0)
    assert not ends.all_read()
    ends.reached(1)
    assert ends.all_read()


def test_a_record_after_the_end_or_a_batch_to_read_again_moves_the_end_on() -> None:
    ends = _PartitionEnds()
    ends.assigned(None, partitions(0, 1))
    ends.reached(0)
    ends.reached(1)
    ends.reread([1])  # a new record on 1, or a batch of 1 refused and rewound
    assert not ends.all_read()
    ends.reached(1)
    assert ends.all_read()


def test_a_revoked_partition_is_no_longer_waited_for_and_a_new_assignment_starts_over() -> None:
    ends = _PartitionEnds()
    ends.assigned(None, partitions(0, 1))
    ends.reached(0)
    ends.revoked(None, partitions(1))  # another member took it
    assert ends.all_read()
    ends.revoked(None, partitions(0))
    ends.assigned(None, partitions(0, 1))  # read again from the group's commits
    assert not ends.all_read()


def test_a_member_given_no_partition_has_nothing_to_read() -> None:
    ends = _PartitionEnds()
    ends.assigned(None, [])
    assert ends.all_read()


def test_a_cooperative_rebalance_hands_over_only_the_partitions_that_move() -> None:
    ends = _PartitionEnds()
    ends.assigned(None, partitions(0, 1))
    ends.reached(0)
    ends.reached(1)
    ends.assigned(None, partitions(2))  # incremental: 0 and 1 are kept, at their ends
    assert not ends.all_read()
    ends.reached(2)
    assert ends.all_read()


def test_a_whole_revoke_is_a_rebalance_under_way_not_an_end() -> None:
    ends = _PartitionEnds()
    ends.assigned(None, partitions(0, 1))
    ends.reached(0)
    ends.revoked(None, partitions(0, 1))  # eager: all of it, another member joining or leaving
    assert not ends.all_read()  # until the group says what this member holds now
    ends.assigned(None, partitions(1))
    assert not ends.all_read()
    ends.reached(1)
    assert ends.all_read()


def test_an_end_seen_before_a_partition_is_assigned_again_does_not_count() -> None:
    ends = _PartitionEnds()
    ends.assigned(None, partitions(0))
    ends.reached(1)  # a stale event of a partition held before
    ends.assigned(None, partitions(1))  # read afresh from the group's commit
    ends.reached(0)
    assert not ends.all_read()


@pytest.mark.parametrize(
    "option",
    [
        {"partition.assignment.strategy": "cooperative-sticky"},
        {"partition.assignment.strategy": "range,cooperative-sticky"},
        {"group.protocol": "consumer"},
    ],
)
def test_a_cooperative_protocol_is_refused(option: dict[str, str]) -> None:
    """It gives a joining member its partitions only after an empty first round, which
    would read as a member with nothing to read."""
    with pytest.raises(KafkaConfigError, match="eager"):
        _check_eager({"group.id": "g", **option})


def test_the_eager_protocols_are_taken() -> None:
    for strategy in ("range", "roundrobin", "range,roundrobin"):
        _check_eager({"partition.assignment.strategy": strategy, "group.protocol": "classic"})
