"""The placement planner (reference §4.2–4.6): reservations, fit and failure reasons,
strategies, constraints, several tasks subtracting resources, and a safety property."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.ecs.cluster_query import Facts
from corral.ecs.errors import InvalidParameterException
from corral.ecs.placement import (
    DISTINCT_UNSATISFIED,
    MEMBER_OF_UNSATISFIED,
    Candidate,
    NoContainerInstances,
    Reservation,
    Resources,
    place,
    reservation,
    validate_constraints,
    validate_strategies,
)

# --- reservation: §4.2 (agent task.go ToHostResources) ---------------------------------------


def _td(*containers, **task):
    return {"containerDefinitions": list(containers), **task}


def _c(name="app", **fields):
    return {"name": name, "image": "busybox", **fields}


RESERVATIONS = [
    ("task-level cpu/memory win over containers",
     _td(_c(cpu=100, memory=64), cpu="512", memory="1024"), None, Reservation(512, 1024)),
    ("sum of containers without task level",
     _td(_c("a", cpu=100, memory=64), _c("b", cpu=28, memory=32)), None, Reservation(128, 96)),
    ("memoryReservation preferred over memory",
     _td(_c(memory=512, memoryReservation=128)), None, Reservation(0, 128)),
    ("memoryReservation alone",
     _td(_c(memoryReservation=200)), None, Reservation(0, 200)),
    ("unset container cpu counts 0",
     _td(_c(memory=10), _c("b", cpu=256, memory=10)), None, Reservation(256, 20)),
    ("vCPU and GB units",
     _td(_c(), cpu="1 vCPU", memory="2 GB"), None, Reservation(1024, 2048)),
    ("task overrides cpu and memory",
     _td(_c(cpu=10, memory=10), cpu="256", memory="512"), {"cpu": "1024", "memory": "2048"},
     Reservation(1024, 2048)),
    ("container overrides apply per container",
     _td(_c("a", cpu=10, memory=100), _c("b", cpu=10, memory=100)),
     {"containerOverrides": [{"name": "b", "cpu": 90, "memory": 300}]}, Reservation(100, 400)),
    ("container override memoryReservation",
     _td(_c(memory=500)), {"containerOverrides": [{"name": "app", "memoryReservation": 50}]},
     Reservation(0, 50)),
    ("bridge static host ports counted, dynamic not",
     _td(_c(memory=8, portMappings=[{"containerPort": 80, "hostPort": 8080},
                                    {"containerPort": 81, "hostPort": 0},
                                    {"containerPort": 82}])),
     None, Reservation(0, 8, (8080,))),
    ("udp ports apart",
     _td(_c(memory=8, portMappings=[{"containerPort": 53, "hostPort": 5353,
                                     "protocol": "udp"}])),
     None, Reservation(0, 8, (), (5353,))),
    ("host mode: the container port is the host port",
     _td(_c(memory=8, portMappings=[{"containerPort": 9000}]), networkMode="host"),
     None, Reservation(0, 8, (9000,))),
    ("awsvpc ports not counted",
     _td(_c(memory=8, portMappings=[{"containerPort": 80, "hostPort": 80}]),
         networkMode="awsvpc"), None, Reservation(0, 8)),
]


@pytest.mark.parametrize("task_def,overrides,expected", [r[1:] for r in RESERVATIONS],
                         ids=[r[0] for r in RESERVATIONS])
def test_reservation(task_def, overrides, expected):
    assert reservation(task_def, overrides) == expected


# --- fit and failure reasons --------------------------------------------------------------

HOST_PORTS = frozenset({22, 2375, 2376, 51678, 51679})


def _cand(name="i1", cpu=2048, memory=1000, ports=HOST_PORTS, status="ACTIVE", groups=(),
          attributes=None, connected=True):
    facts = Facts(attributes=attributes or {"ecs.availability-zone": "us-east-1a"},
                  ec2_instance_id=f"i-{name}", agent_connected=connected,
                  running_tasks_count=len(groups), task_groups=frozenset(groups))
    return Candidate(name, f"arn:ci/{name}", status, Resources(cpu, memory, ports), facts,
                     tuple(groups))


def _place(r, cands, constraints=(), strategies=(), count=1, group="family:web", seed=0):
    return place(r, list(cands), list(constraints), list(strategies), group=group,
                 count=count, rng=random.Random(seed))


FITS = [
    ("fits", Reservation(512, 256), _cand(), None),
    ("exactly fits", Reservation(2048, 1000), _cand(), None),
    ("cpu short", Reservation(4096, 10), _cand(), "RESOURCE:CPU"),
    ("memory short", Reservation(10, 1001), _cand(), "RESOURCE:MEMORY"),
    ("cpu checked before memory", Reservation(4096, 4096), _cand(), "RESOURCE:CPU"),
    ("port reserved by the host", Reservation(0, 8, (22,)), _cand(), "RESOURCE:PORTS"),
    ("port held by a task", Reservation(0, 8, (8080,)), _cand(ports=HOST_PORTS | {8080}),
     "RESOURCE:PORTS"),
    ("udp port clash", Reservation(0, 8, (), (53,)),
     Candidate("i1", "arn:ci/i1", "ACTIVE", Resources(10, 10, frozenset(), frozenset({53}))),
     "RESOURCE:PORTS"),
    ("tcp and udp are separate", Reservation(0, 8, (), (22,)), _cand(), None),
    ("agent disconnected", Reservation(1, 1), _cand(connected=False), "AGENT"),
]


@pytest.mark.parametrize("res,cand,reason", [f[1:] for f in FITS], ids=[f[0] for f in FITS])
def test_fit_or_failure_reason(res, cand, reason):
    result = _place(res, [cand])
    if reason is None:
        assert result.placed == [cand.instance_id] and result.failures == []
    else:
        assert result.placed == [] and result.failures == [(cand.arn, reason)]


def test_no_candidates_or_only_draining_is_no_container_instances():
    with pytest.raises(NoContainerInstances, match="No Container Instances were found"):
        _place(Reservation(1, 1), [])
    with pytest.raises(InvalidParameterException):
        _place(Reservation(1, 1), [_cand(status="DRAINING")])


def test_draining_instance_takes_no_task():
    result = _place(Reservation(1, 1), [_cand("d", status="DRAINING"), _cand("a")], count=3)
    assert result.placed == ["a", "a", "a"]


def test_failure_names_the_closest_instance():
    # i1 lacks CPU, i2 has CPU but lacks memory: i2 got further through the checks.
    cands = [_cand("i1", cpu=10), _cand("i2", memory=10)]
    assert _place(Reservation(100, 100), cands).failures == [("arn:ci/i2", "RESOURCE:MEMORY")]


# --- several tasks subtract what the earlier ones took -------------------------------------

def test_three_400mib_tasks_on_1000mib_place_two():
    result = _place(Reservation(0, 400), [_cand(memory=1000)], count=3)
    assert result.placed == ["i1", "i1"]
    assert result.failures == [("arn:ci/i1", "RESOURCE:MEMORY")]


def test_static_port_placed_once_per_instance():
    result = _place(Reservation(0, 1, (8080,)), [_cand("a"), _cand("b")], count=3)
    assert sorted(result.placed) == ["a", "b"]
    assert result.failures == [("arn:ci/a", "RESOURCE:PORTS")] or \
        result.failures == [("arn:ci/b", "RESOURCE:PORTS")]


# --- constraints ---------------------------------------------------------------------------

def test_member_of_selects_matching_instances():
    cands = [_cand("a", attributes={"stack": "dev"}), _cand("b", attributes={"stack": "prod"})]
    result = _place(Reservation(1, 1), cands, [{"type": "memberOf",
                                                "expression": "attribute:stack == prod"}],
                    count=2)
    assert result.placed == ["b", "b"]


def test_member_of_unsatisfied():
    result = _place(Reservation(1, 1), [_cand()],
                    [{"type": "memberOf", "expression": "attribute:stack == prod"}])
    assert result.failures == [("arn:ci/i1", MEMBER_OF_UNSATISFIED)]


def test_member_of_sees_tasks_placed_in_the_same_call():
    result = _place(Reservation(1, 1), [_cand()],
                    [{"type": "memberOf", "expression": "runningTasksCount < 2"}], count=3)
    assert result.placed == ["i1", "i1"]
    assert result.failures == [("arn:ci/i1", MEMBER_OF_UNSATISFIED)]


def test_distinct_instance_one_task_per_instance():
    result = _place(Reservation(1, 1), [_cand("a"), _cand("b")],
                    [{"type": "distinctInstance"}], count=3)
    assert sorted(result.placed) == ["a", "b"]
    assert len(result.failures) == 1 and result.failures[0][1] == DISTINCT_UNSATISFIED


def test_distinct_instance_counts_existing_tasks_of_the_group():
    cands = [_cand("a", groups=("family:web",)), _cand("b", groups=("family:other",))]
    assert _place(Reservation(1, 1), cands, [{"type": "distinctInstance"}]).placed == ["b"]


def test_resources_are_checked_before_constraints():
    result = _place(Reservation(1, 5000), [_cand()],
                    [{"type": "memberOf", "expression": "attribute:stack == prod"}])
    assert result.failures == [("arn:ci/i1", "RESOURCE:MEMORY")]


# --- strategies ----------------------------------------------------------------------------

def test_binpack_memory_picks_least_remaining_that_fits():
    cands = [_cand("big", memory=4000), _cand("small", memory=600), _cand("tiny", memory=100)]
    result = _place(Reservation(0, 300), cands, strategies=[{"type": "binpack",
                                                             "field": "memory"}], count=3)
    assert result.placed == ["small", "small", "big"]


def test_binpack_cpu():
    cands = [_cand("a", cpu=4096), _cand("b", cpu=1024)]
    result = _place(Reservation(512, 1), cands, strategies=[{"type": "binpack",
                                                             "field": "cpu"}], count=3)
    assert result.placed == ["b", "b", "a"]


def test_spread_instance_id_alternates():
    cands = [_cand("a"), _cand("b"), _cand("c")]
    result = _place(Reservation(1, 1), cands, strategies=[{"type": "spread",
                                                           "field": "instanceId"}], count=6)
    assert sorted(result.placed) == ["a", "a", "b", "b", "c", "c"]


def test_spread_counts_only_the_same_group():
    cands = [_cand("a", groups=("family:web",)), _cand("b", groups=("family:db",) * 3)]
    result = _place(Reservation(1, 1), cands, strategies=[{"type": "spread", "field": "host"}])
    assert result.placed == ["b"]


def test_spread_by_attribute_then_binpack_breaks_ties():
    az = "ecs.availability-zone"
    cands = [_cand("a1", memory=900, attributes={az: "a"}),
             _cand("a2", memory=500, attributes={az: "a"}),
             _cand("b1", memory=900, attributes={az: "b"})]
    strategies = [{"type": "spread", "field": f"attribute:{az}"},
                  {"type": "binpack", "field": "memory"}]
    result = _place(Reservation(0, 100), cands, strategies=strategies, count=2)
    assert result.placed[0] in ("a2", "b1")  # both zones empty: binpack breaks the tie
    assert result.placed[0] == "a2" and result.placed[1] == "b1"


def test_random_is_driven_by_the_rng():
    cands = [_cand(str(i)) for i in range(5)]
    picks = {tuple(_place(Reservation(1, 1), cands, strategies=[{"type": "random"}],
                          count=3, seed=s).placed) for s in range(20)}
    assert len(picks) > 1
    same = _place(Reservation(1, 1), cands, strategies=[{"type": "random"}], count=3, seed=7)
    assert same == _place(Reservation(1, 1), cands, strategies=[{"type": "random"}],
                          count=3, seed=7)


# --- validation ----------------------------------------------------------------------------

GOOD_CONSTRAINTS = [
    [{"type": "distinctInstance"}],
    [{"type": "memberOf", "expression": "attribute:ecs.instance-type =~ t2.*"}],
    [{"type": "memberOf", "expression": "runningTasksCount == 0"}] * 10,
]


@pytest.mark.parametrize("constraints", GOOD_CONSTRAINTS, ids=["distinct", "memberOf", "ten"])
def test_valid_constraints(constraints):
    validate_constraints(constraints)


BAD_CONSTRAINTS = [
    ("eleven", [{"type": "distinctInstance"}] * 11, "Too many placement constraints"),
    ("unknown type", [{"type": "sameZone"}], "Invalid placement constraint type"),
    ("distinct with expression", [{"type": "distinctInstance", "expression": "x == y"}],
     "takes no expression"),
    ("memberOf without expression", [{"type": "memberOf"}], "requires an expression"),
    ("memberOf bad expression", [{"type": "memberOf", "expression": "nonsense"}],
     "Invalid placement constraint expression"),
]


@pytest.mark.parametrize("constraints,message", [b[1:] for b in BAD_CONSTRAINTS],
                         ids=[b[0] for b in BAD_CONSTRAINTS])
def test_invalid_constraints(constraints, message):
    with pytest.raises(InvalidParameterException, match=message):
        validate_constraints(constraints)


def test_distinct_instance_refused_in_task_definitions():
    with pytest.raises(InvalidParameterException, match="'distinctInstance' is not supported"):
        validate_constraints([{"type": "distinctInstance"}], where="Create TaskDefinition",
                             allow_distinct=False)


BAD_STRATEGIES = [
    ("six", [{"type": "random"}] * 6, "Too many placement strategies"),
    ("unknown type", [{"type": "pack"}], "Invalid placement strategy type"),
    ("random with field", [{"type": "random", "field": "cpu"}], "takes no field"),
    ("binpack on disk", [{"type": "binpack", "field": "disk"}], "Invalid field 'disk'"),
    ("binpack without field", [{"type": "binpack"}], "Invalid field 'None'"),
    ("spread without field", [{"type": "spread"}], "Invalid field"),
    ("spread on empty attribute", [{"type": "spread", "field": "attribute:"}],
     "Invalid field"),
]


@pytest.mark.parametrize("strategies,message", [b[1:] for b in BAD_STRATEGIES],
                         ids=[b[0] for b in BAD_STRATEGIES])
def test_invalid_strategies(strategies, message):
    with pytest.raises(InvalidParameterException, match=message):
        validate_strategies(strategies)


def test_valid_strategies():
    validate_strategies([{"type": "spread", "field": "attribute:ecs.availability-zone"},
                         {"type": "spread", "field": "instanceId"},
                         {"type": "binpack", "field": "memory"}, {"type": "random"},
                         {"type": "binpack", "field": "cpu"}])


# --- safety property -----------------------------------------------------------------------

_strategy = st.sampled_from([{"type": "random"}, {"type": "binpack", "field": "cpu"},
                             {"type": "binpack", "field": "memory"},
                             {"type": "spread", "field": "instanceId"}])


@settings(max_examples=200, deadline=None)
@given(
    hosts=st.lists(st.tuples(st.integers(0, 4096), st.integers(0, 4096),
                             st.frozensets(st.integers(1, 20), max_size=5)),
                   min_size=1, max_size=4),
    cpu=st.integers(0, 2048), memory=st.integers(0, 2048),
    ports=st.lists(st.integers(1, 20), max_size=2, unique=True),
    count=st.integers(1, 10), strategies=st.lists(_strategy, max_size=3),
    seed=st.integers(0, 1000),
)
def test_placed_tasks_never_exceed_remaining(hosts, cpu, memory, ports, count, strategies,
                                             seed):
    cands = [Candidate(f"i{n}", f"arn:i{n}", "ACTIVE", Resources(c, m, p))
             for n, (c, m, p) in enumerate(hosts)]
    r = Reservation(cpu, memory, tuple(ports))
    result = _place(r, cands, strategies=strategies, count=count, seed=seed)
    assert len(result.placed) + len(result.failures) == count
    for cand in cands:
        n = result.placed.count(cand.instance_id)
        assert n * cpu <= cand.remaining.cpu and n * memory <= cand.remaining.memory
        if ports and n:
            assert n == 1 and not set(ports) & cand.remaining.ports


@pytest.mark.parametrize("overrides,cpu,memory", [
    ({"cpu": "1 vCPU", "memory": "1 GiB"}, 1024, 1024),
    ({"cpu": "256", "memory": "512 MiB"}, 256, 512),
], ids=["vcpu-gib", "units-mib"])
def test_override_sizes_read_as_register_task_definition_reads_them(overrides, cpu, memory):
    td = {"containerDefinitions": [{"name": "a", "memory": 16}], "networkMode": "awsvpc"}
    r = reservation(td, overrides)
    assert (r.cpu, r.memory) == (cpu, memory)


def test_an_override_size_that_is_not_one_is_invalid_parameter():
    td = {"containerDefinitions": [{"name": "a", "memory": 16}]}
    with pytest.raises(InvalidParameterException, match="'lots' is not a valid"):
        reservation(td, {"cpu": "lots"})
