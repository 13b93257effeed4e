"""Namespaces, replication slot names and key prefix overlaps (plugins/module_utils/patroni_names.py)."""

import pytest

from ansible_collections.pgha.cluster.plugins.module_utils.patroni_names import (
    cluster_places, namespace_problem, prefix_overlaps, slot_collisions, slot_name)


@pytest.mark.parametrize('namespace', ['/service', 'service', '/service/', '//pg//ha/', 'a.b/c_d-e'])
def test_namespaces_taken(namespace):
    assert namespace_problem(namespace) is None


@pytest.mark.parametrize('namespace, needle', [
    ('/', 'holds no name'),
    ('', 'holds no name'),
    ('/ser vice', "has the part(s) 'ser vice'"),
    ('/service/../x', "has the part(s) '..'"),
    ('/-x/.y', "has the part(s) '-x', '.y'"),
    (5, 'is not a string'),
])
def test_namespaces_refused(namespace, needle):
    assert needle in namespace_problem(namespace)


@pytest.mark.parametrize('member, slot', [
    ('pg-1', 'pg_1'), ('PG.1', 'pg_1'), ('pg_1', 'pg_1'), ('x' * 70, 'x' * 63), ('é', 'u0233'),
])
def test_slot_names_as_patroni_makes_them(member, slot):
    assert slot_name(member) == slot


def test_slot_collisions():
    assert slot_collisions(['pg-1', 'pg2', 'PG_1', 'pg-1']) == {'pg_1': ['pg-1', 'PG_1']}
    assert slot_collisions(['pg1', 'pg2']) == {}


def test_prefix_overlaps():
    places = cluster_places({'a': {'scope': 'a', 'namespace': '/service'},
                             'b': {'scope': 'b', 'namespace': 'service/a'},
                             'c': {'scope': 'ab', 'namespace': '/service'},
                             'bad': {'scope': 'x/y', 'namespace': '/service'}})
    assert places == [('a', '/service/a/'), ('b', '/service/a/b/'), ('c', '/service/ab/')]
    assert prefix_overlaps(places) == [('a', '/service/a/', 'b', '/service/a/b/')]
    assert prefix_overlaps([('lb', '/pgha/lb/'), ('x', '/pgha/lb/main/'), ('y', '/pgha/')]) == [
        ('lb', '/pgha/lb/', 'x', '/pgha/lb/main/'), ('lb', '/pgha/lb/', 'y', '/pgha/'),
        ('x', '/pgha/lb/main/', 'y', '/pgha/')]
